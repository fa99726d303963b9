package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/failready/failready/internal/router"
)

// newServer returns service2's whole HTTP API.
func newServer(logger *slog.Logger, s users, pingTimeout time.Duration) http.Handler {
	r := router.New(logger)
	r.Method(http.MethodGet, router.HealthzPath, handleHealthz())
	r.Method(http.MethodGet, router.ReadyzPath, handleReadyz(s, pingTimeout, logger))
	r.Method(http.MethodGet, "/users", handleListUsers(s))
	r.Method(http.MethodPost, "/users", handleCreateUser(s))
	r.Method(http.MethodGet, "/users/{id}", handleGetUser(s))
	return r
}
