package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/failready/failready/internal/router"
)

// newServer returns service1's whole HTTP API.
func newServer(logger *slog.Logger, s2 service2, readyTimeout time.Duration) http.Handler {
	r := router.New(logger)
	r.Method(http.MethodGet, router.HealthzPath, handleHealthz())
	r.Method(http.MethodGet, router.ReadyzPath, handleReadyz(s2, readyTimeout, logger))
	r.Method(http.MethodGet, "/", handleIndex(s2))
	r.Method(http.MethodGet, "/users/{id}", handleGetUser(s2))
	r.Method(http.MethodPost, "/users", handleCreateUser(s2))
	r.Method(http.MethodGet, "/honeypot", handleHoneypot())
	return r
}
