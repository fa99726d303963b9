package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/failready/failready/internal/ratelimit"
)

// Two requests a minute per client: the third gets a 429 with the time to
// wait.
func ExampleMiddleware() {
	limited := func(r *http.Request, scope string) { fmt.Println("limited:", scope) }
	h := ratelimit.Middleware(ratelimit.Limits{PerClient: 2, Global: 1000, Window: time.Minute}, limited, nil)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 3 {
		req := httptest.NewRequest("GET", "/users", nil)
		req.RemoteAddr = "192.0.2.7:4242"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Retry-After") != "")
	}
	// Output:
	// 200 false
	// 200 false
	// limited: client
	// 429 true
}
