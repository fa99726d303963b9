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
//
// The probe paths are defined here and only here; the router, the
// telemetry that leaves probes out, the binaries' healthcheck and the dev
// stack all take them from this package.
//
// Depends on: the standard library only (log/slog).
//
// Tests use: go.uber.org/goleak, internal/logging/logtest.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
)

// The probe paths.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Paths returns both probe paths, for what leaves probes out (the access
// log's level, the metrics, the traces).
func Paths() []string { return []string{LivePath, ReadyPath} }

// Refuse writes a refusal (status and a message). Pass the service's own
// error writer (respond.Error in this project) so that a refusal has the
// same JSON shape, request ID included, as every other error; nil writes
// {"error": msg} as JSON. A function rather than an import keeps this
// package liftable on its own.
type Refuse func(w http.ResponseWriter, r *http.Request, status int, msg string)

// jsonRefusal is the default Refuse.
func jsonRefusal(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Live answers 200 while the process serves.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
}

// LiveIf is liveness for a process that can be up and stuck (a worker whose
// every task hangs): 200 while check passes, 503 with notLive (logged with
// the check's error, written by refuse) when it does not. check looks at
// the process itself, never at a dependency: a restart must be what fixes
// what it finds.
func LiveIf(check func(context.Context) error, notLive string, logger *slog.Logger, refuse Refuse) http.Handler {
	return probe(check, "not live", notLive, `{"status":"ok"}`, logger, refuse)
}

// Ready answers 200 when check passes, and 503 with notReady (logged with the
// check's error, written by refuse; nil: jsonRefusal) when it does not.
// check should be bounded by a short deadline of its own.
func Ready(check func(context.Context) error, notReady string, logger *slog.Logger, refuse Refuse) http.Handler {
	return probe(check, "not ready", notReady, `{"status":"ready"}`, logger, refuse)
}

func probe(check func(context.Context) error, state, why, ok string, logger *slog.Logger, refuse Refuse) http.Handler {
	if refuse == nil {
		refuse = jsonRefusal
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(r.Context()); err != nil {
			logger.WarnContext(r.Context(), state, "error", err.Error())
			refuse(w, r, http.StatusServiceUnavailable, state+": "+why)
			return
		}
		writeJSON(w, http.StatusOK, ok)
	})
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
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
