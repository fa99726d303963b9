package health_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/logging/logtest"
)

func TestProbes(t *testing.T) {
	var buf logtest.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	var down error
	var refused []int
	refuse := func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		refused = append(refused, status)
		http.Error(w, msg, status)
	}
	ready := health.Ready(func(context.Context) error { return down }, "db unavailable", logger, refuse)

	get := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec
	}
	if rec := get(ready); rec.Code != 200 || !strings.Contains(rec.Body.String(), "ready") {
		t.Fatalf("ready: %d %s", rec.Code, rec.Body)
	}
	down = errors.New("dial tcp: refused")
	if rec := get(ready); rec.Code != 503 || !strings.Contains(rec.Body.String(), "not ready: db unavailable") || len(refused) != 1 {
		t.Fatalf("not ready: %d %s, refusals written %v", rec.Code, rec.Body, refused)
	}
	if l := logtest.Find(buf.Lines(t), map[string]any{"msg": "not ready", "error": "dial tcp: refused"}); len(l) != 1 {
		t.Fatalf("not-ready line: %s", buf.String())
	}
	// Without a writer of the service's, the package answers JSON itself.
	plain := health.Ready(func(context.Context) error { return down }, "db unavailable", logger, nil)
	if rec := get(plain); rec.Code != 503 || rec.Body.String() != `{"error":"not ready: db unavailable"}`+"\n" {
		t.Fatalf("default refusal: %d %q", rec.Code, rec.Body)
	}
	if rec := get(health.Live()); rec.Code != 200 || rec.Body.String() != `{"status":"ok"}`+"\n" ||
		rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("live: %d %q", rec.Code, rec.Body)
	}
	// Liveness with a check of the process itself (a worker's stuck loop).
	var stuck error
	live := health.LiveIf(func(context.Context) error { return stuck }, "the loop makes no progress", logger, nil)
	if rec := get(live); rec.Code != 200 || rec.Body.String() != `{"status":"ok"}`+"\n" {
		t.Fatalf("live with a check: %d %q", rec.Code, rec.Body)
	}
	stuck = errors.New("no task finished for 1m0s")
	if rec := get(live); rec.Code != 503 || rec.Body.String() != `{"error":"not live: the loop makes no progress"}`+"\n" {
		t.Fatalf("not live: %d %q", rec.Code, rec.Body)
	}
	if l := logtest.Find(buf.Lines(t), map[string]any{"msg": "not live", "error": "no task finished for 1m0s"}); len(l) != 1 {
		t.Fatalf("not-live line: %s", buf.String())
	}
}

func TestBypassSparesOnlyTheProbes(t *testing.T) {
	refuse := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) })
	}
	h := health.Bypass(refuse)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for path, want := range map[string]int{health.LivePath: 200, health.ReadyPath: 200, "/": 429, "/no/such": 429} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}
