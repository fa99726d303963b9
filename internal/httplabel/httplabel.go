// Package httplabel gives the bounded names of a request that logs, metrics
// and spans may carry: the route pattern that matched ("/users/{id}", never
// the raw path "/users/42") and the method (one of the standard ones, or
// OTHER). Raw paths and arbitrary methods come from the client; as a metric
// label or span name they let any client create unbounded series.
//
// Depends on: github.com/go-chi/chi/v5 (the matched route pattern).
package httplabel

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Unmatched is the route of a request that matched no route (a 404).
const Unmatched = "unmatched"

// Route returns the chi route pattern that served r, or Unmatched. Call it
// after the router has run (in a middleware, after next.ServeHTTP).
func Route(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return Unmatched
}

// Method returns r.Method when it is a standard method, and "OTHER" for any
// other token a client may send.
func Method(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return r.Method
	}
	return "OTHER"
}
