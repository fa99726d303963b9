package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/metric"

	"github.com/failready/failready/app/router"
	"github.com/failready/failready/internal/deadline"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/ratelimit"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/shed"
	"github.com/failready/failready/internal/tracing"
)

// newServer returns service1's whole HTTP API. The probes answer whatever the
// load; everything else is rate limited per client IP and overall and shed
// past MAX_IN_FLIGHT, and the API routes are bounded by the request budget.
func newServer(logger *slog.Logger, m *metrics.Client, tr tracing.Tracing, mp metric.MeterProvider, s2 service2, cfg config, gate *health.Gate) http.Handler {
	// Ready while service2 can be reached: not while the breaker is open, nor
	// once shutdown has begun.
	ready := health.All(gate.Check, func(ctx context.Context) error { return s2.Ready(ctx, cfg.ReadyTimeout) })
	limited := metrics.NewTags(4, func(scope string) []string { return []string{"scope:" + scope} })
	r := router.New(logger, m, mp)
	// Every request but the probes is rate limited (by the connection's IP:
	// service1 is exposed directly, so no header is trusted) and shed,
	// unknown routes included; the deadline only matters where a handler
	// does work.
	r.Use(
		health.Bypass(ratelimit.Middleware(cfg.RateLimit, func(_ *http.Request, scope string) {
			m.Count(metrics.ServerRateLimited, 1, limited.Get(scope))
		}, respond.Error)),
		health.Bypass(shed.Limit(cfg.MaxInFlight, func(*http.Request) { m.Count(metrics.ServerShed, 1, nil) }, respond.Error)),
	)
	r.Method(http.MethodGet, health.LivePath, health.Live())
	r.Method(http.MethodGet, health.ReadyPath, health.Ready(ready, "service2 unavailable", logger, respond.Error))
	r.Group(func(r chi.Router) {
		r.Use(deadline.Middleware(cfg.RequestTimeout))
		r.Method(http.MethodGet, "/", handleIndex(s2))
		r.Method(http.MethodGet, "/users/{id}", handleGetUser(s2))
		r.Method(http.MethodPost, "/users", handleCreateUser(s2))
		r.Method(http.MethodGet, "/honeypot", handleHoneypot())
	})
	return router.Handler(r, tr)
}
