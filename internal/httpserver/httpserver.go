// Package httpserver runs an http.Server with timeouts on every phase of a
// connection and a graceful shutdown.
//
// A server without timeouts can be held open by slow clients until it runs
// out of file descriptors (Slowloris); a server killed without Shutdown drops
// the requests it was serving. When its context is cancelled (on SIGTERM),
// Run turns readiness false, keeps serving for a drain period while load
// balancers move traffic away, then stops accepting, lets in-flight requests
// finish within a bound, and only then returns, so the caller can close the
// database last. Debug (debug.go) serves pprof on a separate, private port.
//
// Depends on: the standard library only (log/slog, net/http/pprof).
//
// Tests use: go.uber.org/goleak, internal/logging/logtest.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of an HTTP server. WriteTimeout must exceed the longest request a
// handler may take, or the response is cut.
type Timeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
	Drain      time.Duration // after SIGTERM: not ready, still serving, so traffic moves away
	Shutdown   time.Duration // then: in-flight requests may take this long to finish
}

// MaxHeaderBytes bounds request headers; larger ones get 431.
const MaxHeaderBytes = 64 << 10

// New returns a server for h with the timeouts set and net/http's own error
// lines (TLS handshakes, bad requests) routed to logger.
func New(h http.Handler, t Timeouts, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Run serves srv on ln until ctx is cancelled. Then it calls notReady (which
// turns readiness false), keeps serving for t.Drain so that load balancers
// stop sending traffic (a server that stops accepting at once turns the
// requests still routed to it into connection errors), and shuts down
// gracefully within t.Shutdown. It returns nil after a clean shutdown, and an
// error when serving failed or in-flight requests outlived the bound.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, t Timeouts, notReady func(), logger *slog.Logger) error {
	shutdownTimeout := t.Shutdown
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	if notReady != nil {
		notReady()
	}
	if t.Drain > 0 {
		logger.Info("shutting down: not ready, still serving while traffic moves away", "drain", t.Drain.String())
		time.Sleep(t.Drain)
	}
	logger.Info("shutting down: no new connections, draining in-flight requests", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // cut what is left
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", shutdownTimeout, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("http server stopped")
	return nil
}

// Healthcheck GETs path on the server listening at listenAddr and fails unless
// it answers 200. The images have no shell or curl, so the binaries run this
// as their own container healthcheck ("service1 healthcheck").
func Healthcheck(ctx context.Context, listenAddr, path string) error {
	_, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listenAddr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", path, resp.StatusCode)
	}
	return nil
}
