package deadline_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/failready/failready/internal/deadline"
)

// The caller has 300 ms left of its budget: the handler's context ends then,
// not at the service's own 2 s limit.
func ExampleMiddleware() {
	h := deadline.Middleware(2 * time.Second)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := r.Context().Deadline()
		fmt.Println("budget under 301 ms:", time.Until(d) <= 301*time.Millisecond)
	}))
	req := httptest.NewRequest("GET", "/users", nil)
	req.Header.Set(deadline.Header, "300")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// budget under 301 ms: true
}
