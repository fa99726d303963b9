package httplabel_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/failready/failready/internal/httplabel"
)

// Labels are the route pattern, never the raw path, and a bounded method:
// an id in the path or a made-up method cannot grow a metric's series. A
// middleware reads them once the router has matched.
func ExampleRoute() {
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			fmt.Println(httplabel.Method(r), httplabel.Route(r))
		})
	})
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/coffee/1", nil))
	// Output:
	// GET /users/{id}
	// OTHER unmatched
}
