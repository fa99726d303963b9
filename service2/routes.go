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

// newServer returns service2's whole HTTP API.
func newServer(logger *slog.Logger, m *metrics.Client, tr tracing.Tracing, s users, pingTimeout time.Duration) http.Handler {
	dbUp := func(ctx context.Context) error { return s.Ping(ctx, pingTimeout) }
	r := router.New(logger, m)
	r.Method(http.MethodGet, health.LivePath, health.Live())
	r.Method(http.MethodGet, health.ReadyPath, health.Ready(dbUp, "database unavailable", logger))
	r.Method(http.MethodGet, "/users", handleListUsers(s))
	r.Method(http.MethodPost, "/users", handleCreateUser(s))
	r.Method(http.MethodGet, "/users/{id}", handleGetUser(s))
	return router.Handler(r, tr)
}
