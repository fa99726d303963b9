// Command service1 is the edge of the demo: it owns request IDs and calls
// service2 for the data.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/httpserver"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/tracing"
)

const serviceName = "service1"

// version is the git commit, set at build time with
// -ldflags "-X main.version=$(git rev-parse --short HEAD)".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		logging.Fatal(os.Stdout, serviceName, version, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if len(args) > 1 && args[1] == "healthcheck" {
		return httpserver.Healthcheck(ctx, cfg.ListenAddr, health.LivePath)
	}
	logger := logging.New(stdout, logging.Options{
		Service: serviceName, Version: version, DeploymentID: cfg.DeploymentID, Level: cfg.LogLevel,
	})

	tr, shutdownTracing, err := tracing.Setup(ctx, cfg.Tracing, tracing.Options{
		Service: serviceName, Version: version, DeploymentID: cfg.DeploymentID, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) // bounded: flushes the last spans
	mp, shutdownExemplars, err := exemplars.Setup(ctx, cfg.Exemplars, exemplars.Options{
		Service: serviceName, Version: version, DeploymentID: cfg.DeploymentID, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer shutdownExemplars(context.Background()) // bounded: exports the last histograms

	m := metrics.New(metrics.Options{
		Addr: cfg.StatsdAddr, Service: serviceName, Version: version, Logger: logger,
	})
	defer m.Close() // after the server has drained: flushes the last metrics
	s2 := newService2Client(cfg.Service2URL, cfg.Service2, logger, m, tr, mp)
	m.AddCollector(s2.breakerCollector())
	defer httpserver.StartDebug(ctx, cfg.DebugAddr, logger)()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on LISTEN_ADDR: %w", err)
	}
	logger.Info("starting", "service2_url", cfg.Service2URL.String(), "request_timeout", cfg.RequestTimeout.String(),
		"service2_timeout", cfg.Service2.AttemptTimeout.String(), "go_version", runtime.Version())
	gate := &health.Gate{}
	srv := httpserver.New(newServer(logger, m, tr, mp, s2, cfg, gate), cfg.HTTP, logger)
	return httpserver.Run(ctx, srv, ln, cfg.HTTP, gate.Close, logger)
}
