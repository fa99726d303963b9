package httplabel_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/failready/failready/internal/httplabel"
)

func TestPatternAndMethod(t *testing.T) {
	var route, method string
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			route, method = httplabel.Route(r), httplabel.Method(r)
		})
	}
	r := chi.NewRouter()
	r.Use(mw)
	r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	r.Route("/api", func(r chi.Router) { r.Get("/items/{id}", func(http.ResponseWriter, *http.Request) {}) })

	for _, c := range []struct{ method, path, route, wantMethod string }{
		{"GET", "/users/42", "/users/{id}", "GET"},
		{"GET", "/api/items/7", "/api/items/{id}", "GET"},
		{"GET", "/nope/123", httplabel.Unmatched, "GET"},
		{"BREW", "/users/42", httplabel.Unmatched, "OTHER"}, // a 405 matched no route
	} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
		if route != c.route || method != c.wantMethod {
			t.Errorf("%s %s: route %q method %q, want %q %q", c.method, c.path, route, method, c.route, c.wantMethod)
		}
	}
}
