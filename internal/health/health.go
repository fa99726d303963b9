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
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

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

// Gate is a readiness check that a process closes when it starts to shut
// down: readiness turns false at once, so that load balancers move traffic
// away during the drain period, while in-flight requests still finish.
type Gate struct{ closed atomic.Bool }

// ErrDraining is the Gate's error once closed.
var ErrDraining = errors.New("shutting down")

// Close makes Check fail from now on.
func (g *Gate) Close() { g.closed.Store(true) }

// Check fails once the gate is closed.
func (g *Gate) Check(context.Context) error {
	if g.closed.Load() {
		return ErrDraining
	}
	return nil
}

// All runs checks in order and returns the first failure.
func All(checks ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// Bypass applies mw to every request but the probes: a rate limit or a load
// shedder must not turn a busy process into one its orchestrator kills or
// takes out of rotation.
func Bypass(mw func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		wrapped := mw(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == LivePath || r.URL.Path == ReadyPath {
				next.ServeHTTP(w, r)
				return
			}
			wrapped.ServeHTTP(w, r)
		})
	}
}
