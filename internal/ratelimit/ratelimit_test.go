package ratelimit_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/failready/failready/internal/ratelimit"
	"github.com/failready/failready/internal/respond"
)

func TestPerClientAndGlobal(t *testing.T) {
	limited := map[string]int{}
	r := chi.NewRouter()
	r.Use(ratelimit.Middleware(ratelimit.Limits{PerClient: 3, Global: 5, Window: time.Minute},
		func(_ *http.Request, scope string) { limited[scope]++ }, nil)) // nil: the package's own JSON refusal
	r.Get("/", func(http.ResponseWriter, *http.Request) {})

	from := func(ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = ip + ":5000"
		req.Header.Set("X-Forwarded-For", "1.2.3.4") // not trusted: must not change the key
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := from("10.0.0.1"); rec.Code != 200 {
			t.Fatalf("request %d from A: %d", i+1, rec.Code)
		}
	}
	rec := from("10.0.0.1") // the N+1-th in the window
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "60" || rec.Header().Get("X-RateLimit-Limit") != "3" ||
		rec.Header().Get("X-RateLimit-Remaining") != "0" || rec.Header().Get("X-RateLimit-Reset") == "" {
		t.Fatalf("A's 4th: %d %v", rec.Code, rec.Header())
	}
	var b struct{ Error string }
	if rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &b) != nil ||
		b.Error != "rate limit exceeded (client): retry after 60s" {
		t.Fatalf("body %s", rec.Body)
	}
	// Another client is unaffected...
	for i := range 2 {
		if rec := from("10.0.0.2"); rec.Code != 200 {
			t.Fatalf("request %d from B: %d", i+1, rec.Code)
		}
	}
	// ...until the global ceiling (5) is reached.
	if rec := from("10.0.0.3"); rec.Code != 429 {
		t.Fatalf("past the global ceiling: %d", rec.Code)
	}
	if limited[ratelimit.ScopeClient] != 1 || limited[ratelimit.ScopeGlobal] != 1 {
		t.Fatalf("limited %v", limited)
	}
}

// firstRefused serves requests from the given remote addresses (cycling) and
// headers through a limit of n per client, and returns the 1-based index of
// the first 429, or 0.
func firstRefused(t *testing.T, mw []func(http.Handler) http.Handler, n, count int, from func(i int) (remote, xff string)) int {
	t.Helper()
	r := chi.NewRouter()
	r.Use(mw...)
	r.Use(ratelimit.Middleware(ratelimit.Limits{PerClient: n, Global: 1000, Window: time.Minute}, nil, respond.Error))
	r.Get("/", func(http.ResponseWriter, *http.Request) {})
	for i := range count {
		req := httptest.NewRequest("GET", "/", nil)
		remote, xff := from(i)
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code == 429 {
			return i + 1
		}
		if rec.Code != 200 {
			t.Fatalf("request %d: %d", i+1, rec.Code)
		}
	}
	return 0
}

// An IPv6 client controls its whole /64: rotating addresses in it must not
// win it a fresh budget, while another /64 keeps its own.
func TestIPv6ClientIsItsSlash64(t *testing.T) {
	got := firstRefused(t, nil, 3, 10, func(i int) (string, string) {
		return fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1), ""
	})
	if got != 4 {
		t.Fatalf("addresses rotating within one /64: first 429 at request %d, want 4", got)
	}
	got = firstRefused(t, nil, 3, 10, func(i int) (string, string) {
		return fmt.Sprintf("[2001:db8:1:%x::1]:5000", i+1), ""
	})
	if got != 0 {
		t.Fatalf("10 different /64s: refused at request %d", got)
	}
}

// Behind a trusted proxy, chi's ClientIPFromXFF resolves the client and the
// limiter keys on that, not on the proxy's own address.
func TestKeysOnTheClientIPResolvedUpstream(t *testing.T) {
	mw := []func(http.Handler) http.Handler{middleware.ClientIPFromXFF("10.0.0.0/8")}
	// Two clients behind one proxy: each gets its own budget of 3.
	got := firstRefused(t, mw, 3, 6, func(i int) (string, string) {
		return "10.9.9.9:443", fmt.Sprintf("203.0.113.%d", i%2+1)
	})
	if got != 0 {
		t.Fatalf("two clients behind the proxy, 3 requests each: refused at request %d", got)
	}
	got = firstRefused(t, mw, 3, 6, func(int) (string, string) { return "10.9.9.9:443", "203.0.113.7" })
	if got != 4 {
		t.Fatalf("one client behind the proxy: first 429 at request %d, want 4", got)
	}
}

// The service's own error writer answers the refusal (the request ID in it).
func TestRefusalThroughTheServiceWriter(t *testing.T) {
	var got []string
	refuse := func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		got = append(got, fmt.Sprint(status, " ", msg))
		respond.Error(w, r, status, msg)
	}
	h := ratelimit.Middleware(ratelimit.Limits{PerClient: 1, Global: 10, Window: time.Minute}, nil, refuse)(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if len(got) != 1 || got[0] != "429 rate limit exceeded (client): retry after 60s" {
		t.Fatalf("refusals written: %q", got)
	}
}
