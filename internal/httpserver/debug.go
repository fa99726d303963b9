package httpserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Debug serves pprof and the goroutine count on a separate listener: a
// private port (loopback, or the pod's own network), never the public one.
// It runs until ctx is cancelled. The benchmarks read it; so can a human
// chasing a leak or a hot path (go tool pprof http://ADDR/debug/pprof/heap).
func Debug(ctx context.Context, addr string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/runtime", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"goroutines": runtime.NumGoroutine(), "heap_alloc_bytes": ms.HeapAlloc, "sys_bytes": ms.Sys,
			"gc_cycles": ms.NumGC, "gc_pause_total_ns": ms.PauseTotalNs,
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	logger.Info("debug listening", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// StartDebug runs Debug in the background when addr is set, and returns the
// func that stops it and waits for it.
func StartDebug(ctx context.Context, addr string, logger *slog.Logger) (stop func()) {
	if addr == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Debug(ctx, addr, logger); err != nil {
			logger.Error("debug listener failed", "addr", addr, "error", err.Error())
		}
	}()
	return func() { cancel(); <-done }
}
