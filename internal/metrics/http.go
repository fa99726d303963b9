// The HTTP server's metrics: one Timing per request (a histogram after
// statsd-exporter's mapping: its _count is the request rate, its buckets
// the latency) tagged by method, route pattern and status class, and the
// requests in flight. The tag slices are cached per key (Tags) rather than
// built per request, which would be three string concatenations and a slice
// on every request; the plain version is
// c.Timing(name, d, []string{"method:" + m, "route:" + r, "status:" + s}).

package metrics

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/failready/failready/internal/httplabel"
)

type serverKey struct {
	method, route string
	status        int
}

// Middleware measures every request: its duration by method, route pattern
// and status (one Timing call; the histogram's _count is the request count)
// and the requests in flight (an atomic, sampled by the reporter). Requests
// to the skip paths (health probes) are not measured: probes every few
// seconds would dilute the rate and latency of real traffic, and the
// orchestrator already records their outcome.
func (c *Client) Middleware(skip ...string) func(http.Handler) http.Handler {
	return c.MiddlewareWith(nil, skip...)
}

// Observer is told of every measured request, with what the middleware
// already has: its route pattern, status and duration. Another recorder of
// the same latency (an OpenTelemetry histogram) then needs no timer, route
// lookup or response recorder of its own.
type Observer func(r *http.Request, route string, status int, took time.Duration)

// MiddlewareWith is Middleware, also telling also (when not nil) of each
// measured request.
func (c *Client) MiddlewareWith(also Observer, skip ...string) func(http.Handler) http.Handler {
	skipSet := make(map[string]bool, len(skip))
	for _, p := range skip {
		skipSet[p] = true
	}
	tags := NewTags(2000, func(k serverKey) []string {
		return []string{"method:" + k.method, "route:" + k.route, "status:" + StatusTag(k.status)}
	})
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if skipSet[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			c.inFlight.Add(1)
			// Reuse an outer middleware's wrapper (the access log's): one
			// wrapper per request, not one per middleware.
			ww, ok := w.(middleware.WrapResponseWriter)
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			defer func() {
				c.inFlight.Add(-1)
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				took, route := time.Since(start), httplabel.Route(r)
				c.Timing(ServerRequestDuration, took, tags.Get(serverKey{httplabel.Method(r), route, status}))
				if also != nil {
					also(r, route, status, took)
				}
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// PanicCounter returns a hook for the recoverer that counts a panic by route.
func (c *Client) PanicCounter() func(*http.Request, any) {
	tags := NewTags(500, func(route string) []string { return []string{"route:" + route} })
	return func(r *http.Request, _ any) {
		c.Count(ServerPanics, 1, tags.Get(httplabel.Route(r)))
	}
}
