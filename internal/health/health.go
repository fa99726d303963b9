// Package health provides the two probes every service answers, and keeps
// them apart on purpose:
//
//   - liveness (/healthz): the process is up and serving. It checks no
//     dependency: an orchestrator restarts a process that fails it, and
//     restarting every replica because the database is down makes an outage
//     worse.
//   - readiness (/readyz): the process can do useful work now (its
//     dependency answers). An orchestrator stops sending traffic to a
//     process that fails it, and sends it again once it passes.
package health

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/failready/failready/internal/respond"
)

// The probe paths.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Live answers 200 while the process serves.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// Ready answers 200 when check passes, and 503 with notReady (logged with the
// check's error) when it does not. check should be bounded by a short
// deadline of its own.
func Ready(check func(context.Context) error, notReady string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(r.Context()); err != nil {
			logger.WarnContext(r.Context(), "not ready", "error", err.Error())
			respond.Error(w, r, http.StatusServiceUnavailable, "not ready: "+notReady)
			return
		}
		respond.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
