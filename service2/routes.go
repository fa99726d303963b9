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
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/shed"
	"github.com/failready/failready/internal/tracing"
)

// newServer returns service2's whole HTTP API. The probes answer whatever the
// load; everything else is shed past MAX_IN_FLIGHT, and the data routes are
// bounded by the shorter of REQUEST_TIMEOUT and the caller's remaining budget.
func newServer(logger *slog.Logger, m *metrics.Client, tr tracing.Tracing, mp metric.MeterProvider, s users, cfg config, gate *health.Gate) http.Handler {
	ready := health.All(gate.Check, func(ctx context.Context) error { return s.Ping(ctx, cfg.MySQL.PingTimeout) })
	r := router.New(logger, m, mp)
	r.Use(health.Bypass(shed.Limit(cfg.MaxInFlight, func(*http.Request) { m.Count(metrics.ServerShed, 1, nil) }, respond.Error)))
	r.Method(http.MethodGet, health.LivePath, health.Live())
	r.Method(http.MethodGet, health.ReadyPath, health.Ready(ready, "database unavailable", logger, respond.Error))
	r.Group(func(r chi.Router) {
		r.Use(deadline.Middleware(cfg.RequestTimeout))
		r.Method(http.MethodGet, "/users", handleListUsers(s))
		r.Method(http.MethodPost, "/users", handleCreateUser(s))
		r.Method(http.MethodGet, "/users/{id}", handleGetUser(s))
		r.Method(http.MethodGet, "/users/export", handleExport(s, cfg.SpoolDir, logger))
	})
	return router.Handler(r, tr)
}
