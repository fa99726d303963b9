package ratelimit_test

import (
	"encoding/json"
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
	r.Use(middleware.ClientIPFromRemoteAddr,
		ratelimit.Middleware(ratelimit.Limits{PerClient: 3, Global: 5, Window: time.Minute},
			func(_ *http.Request, scope string) { limited[scope]++ }))
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
		rec.Header().Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("A's 4th: %d %v", rec.Code, rec.Header())
	}
	var b respond.ErrorBody
	if json.Unmarshal(rec.Body.Bytes(), &b) != nil || b.Error == "" {
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
