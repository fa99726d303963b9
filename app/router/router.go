// Package router builds the chi router both services start from, inside the
// server span: the request ID first, then the span's route name, the access
// log, the metrics (DogStatsD, and the OpenTelemetry latency histogram
// whose buckets carry exemplars), then panic recovery (innermost,
// so that the log and the metrics see its 500), and JSON answers for
// unknown routes (404) and known routes with the wrong method (405, with the
// Allow header, labelled with the route in logs and metrics). HEAD works
// wherever GET does (RFC 9110): the GET handler answers and the server drops
// the body.
//
// Depends on: github.com/go-chi/chi/v5, github.com/go-chi/chi/v5/middleware
// (GetHead), go.opentelemetry.io/otel/metric (the meter provider) and, by
// design, the other middleware packages it composes: internal/requestid,
// internal/tracing, internal/logging, internal/metrics, internal/exemplars,
// internal/recoverer, internal/health, internal/respond.
package router

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/metric"

	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/recoverer"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/tracing"
)

// New returns a router with the shared middleware in place; add routes to
// it, then serve it through Handler. mp takes the latency histogram with
// exemplars (a noop provider records nothing).
func New(logger *slog.Logger, m *metrics.Client, mp metric.MeterProvider) *chi.Mux {
	r := chi.NewRouter()
	probes := health.Paths()
	// The OpenTelemetry histogram rides on the DogStatsD middleware: one
	// timer and route lookup for both. It runs inside the span, whose trace
	// is the exemplar.
	var latency metrics.Observer
	if s, err := exemplars.NewServer(mp); err == nil {
		latency = s.Observe
	} else { // a bad instrument name: the histogram is lost, not the service
		logger.Error("exemplars: no server histogram", "error", err.Error())
	}
	r.Use(
		requestid.Middleware(logger),
		tracing.Middleware(),                 // span name by route, request ID on the span, traceresponse
		logging.AccessLog(logger),            // probes too: the log pipeline drops the successful ones
		m.MiddlewareWith(latency, probes...), // probes not measured
		recoverer.Middleware(logger, respond.Error, m.PanicCounter(), tracing.RecordPanic),
		middleware.GetHead, // HEAD is routed as GET where no HEAD route exists
	)
	r.NotFound(respond.NotFound)
	r.MethodNotAllowed(methodNotAllowed(r))
	return r
}

// Handler is the router as the server serves it: inside otelhttp's server
// span (health probes not traced), so that every line logged for a request,
// the request-ID rejection included, carries its trace.
func Handler(r *chi.Mux, t tracing.Tracing) http.Handler {
	return t.Handler(r, health.Paths()...)
}

var methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// methodNotAllowed answers 405 with the methods the path does allow (chi sets
// Allow only in its own default handler; HEAD goes with GET), and labels the
// request with the route it matched, so that logs and metrics count a 405
// under its route and keep "unmatched" for the 404s.
func methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range methods {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) ||
				(m == http.MethodHead && slices.Contains(allowed, http.MethodGet)) {
				allowed = append(allowed, m)
			}
		}
		if rctx := chi.RouteContext(r.Context()); rctx != nil && len(allowed) > 0 {
			if p := routes.Find(chi.NewRouteContext(), allowed[0], r.URL.Path); p != "" {
				rctx.RoutePatterns = []string{p}
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		respond.Error(w, r, http.StatusMethodNotAllowed,
			"method "+r.Method+" not allowed; allowed: "+strings.Join(allowed, ", "))
	}
}
