package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/router"
	"github.com/failready/failready/internal/tracing"
)

// newServer returns service1's whole HTTP API.
func newServer(logger *slog.Logger, m *metrics.Client, tr tracing.Tracing, s2 service2, readyTimeout time.Duration) http.Handler {
	// Ready while service2 answers; service1 can still answer, with errors
	// that say why, while service2's database is down.
	s2Up := func(ctx context.Context) error { return s2.Ready(ctx, readyTimeout) }
	r := router.New(logger, m)
	r.Method(http.MethodGet, health.LivePath, health.Live())
	r.Method(http.MethodGet, health.ReadyPath, health.Ready(s2Up, "service2 unavailable", logger))
	r.Method(http.MethodGet, "/", handleIndex(s2))
	r.Method(http.MethodGet, "/users/{id}", handleGetUser(s2))
	r.Method(http.MethodPost, "/users", handleCreateUser(s2))
	r.Method(http.MethodGet, "/honeypot", handleHoneypot())
	return router.Handler(r, tr)
}
