// The HTTP server's histogram: http.server.request.duration by method and
// route pattern, as OpenTelemetry's semantic conventions name it (without
// the status code, which they also list: each attribute costs a request
// some 330 instructions in the SDK, the budget is 3 000, and a latency
// panel's exemplar needs only the bucket; the trace it opens has the
// status). It must be recorded inside the span's handler (otelhttp), so
// that the request's context holds the span whose trace becomes the
// exemplar.
//
// A service that already times its requests (a DogStatsD middleware)
// passes Server's Observe to it: one timer, one route lookup and one
// response recorder for both, which is most of what a middleware of its
// own would add. Middleware is the same histogram standing alone.

package exemplars

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/failready/failready/internal/httplabel"
)

// ServerRequestDuration is the server histogram's name.
const ServerRequestDuration = "http.server.request.duration"

type serverKey struct{ method, route string }

// Server is the HTTP server's latency histogram.
type Server struct {
	h     Latency
	attrs *Attrs[serverKey]
}

// NewServer creates the histogram in mp.
func NewServer(mp metric.MeterProvider) (*Server, error) {
	h, err := NewLatency(mp, ServerRequestDuration, "Duration of HTTP requests served, health probes excluded.")
	if err != nil {
		return nil, err
	}
	return &Server{h: h, attrs: NewAttrs(2000, func(k serverKey) []attribute.KeyValue {
		return []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method), semconv.HTTPRoute(k.route)}
	})}, nil
}

// Observe records one request on the route pattern route that took took
// (status is not an attribute, above); r's context gives the exemplar.
func (s *Server) Observe(r *http.Request, route string, _ int, took time.Duration) {
	s.h.Record(r.Context(), took, s.attrs.Get(serverKey{httplabel.Method(r), route}))
}

// Middleware measures every request but those to the skip paths (health
// probes), standing alone (it needs the status only to pass it on).
func (s *Server) Middleware(skip ...string) func(http.Handler) http.Handler {
	skipSet := make(map[string]bool, len(skip))
	for _, p := range skip {
		skipSet[p] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if skipSet[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			// Reuse an outer middleware's recorder: one per request.
			ww, ok := w.(middleware.WrapResponseWriter)
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			defer func() {
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				s.Observe(r, httplabel.Route(r), status, time.Since(start))
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// Middleware is NewServer(mp) then its Middleware(skip...).
func Middleware(mp metric.MeterProvider, skip ...string) (func(http.Handler) http.Handler, error) {
	s, err := NewServer(mp)
	if err != nil {
		return nil, err
	}
	return s.Middleware(skip...), nil
}
