// Command service2 is the data owner of the demo: the users table in MySQL,
// behind a small JSON API that service1 calls.
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

	"github.com/failready/failready/app/mysqldb"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/httpserver"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/outbox"
	"github.com/failready/failready/internal/tracing"
)

const serviceName = "service2"

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
		return httpserver.Healthcheck(ctx, cfg.ListenAddr, health.ReadyPath)
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

	db, err := mysqldb.Open(cfg.MySQL, logger, tr)
	if err != nil {
		return err
	}
	m := metrics.New(metrics.Options{
		Addr: cfg.StatsdAddr, Service: serviceName, Version: version, Logger: logger,
	}, poolCollector(db))
	defer m.Close() // last: flushes the final samples
	defer func() {
		// Last: after the HTTP server has drained, nothing uses the pool.
		if err := db.Close(); err != nil {
			logger.Error("closing database", "error", err.Error())
		}
		logger.Info("database closed")
	}()
	s := newStore(db, cfg.MySQL.QueryTimeout, logger, m, tr)

	defer httpserver.StartDebug(ctx, cfg.DebugAddr, logger)()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on LISTEN_ADDR: %w", err)
	}
	logger.Info("starting", "mysql_addr", cfg.MySQL.Addr, "mysql_database", cfg.MySQL.Database,
		"db_max_open_conns", cfg.MySQL.MaxOpenConns, "go_version", runtime.Version())
	// The outbox relay: publishes the tasks the creates record, until the
	// server has drained (a create during the drain still gets its task
	// published, or it waits in the outbox for the next start).
	if cfg.NATSURL != "off" {
		pub, err := newNATSPublisher(cfg.NATSURL, tr, logger)
		if err != nil {
			return fmt.Errorf("NATS_URL: %w", err)
		}
		defer pub.close()
		relay := outbox.NewRelay(db, pub.publish, outbox.Options{Interval: cfg.OutboxInterval, Logger: logger, Observe: outboxMetrics(m)})
		m.AddCollector(backlogCollector(relay))
		s.taskRecorded = relay.Wake
		rctx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
		relayed := make(chan struct{})
		go func() { relay.Run(rctx); close(relayed) }()
		defer func() { stopRelay(); <-relayed }() // before the pool closes
	}
	gate := &health.Gate{}
	srv := httpserver.New(newServer(logger, m, tr, mp, s, cfg, gate), cfg.HTTP, logger)
	return httpserver.Run(ctx, srv, ln, cfg.HTTP, gate.Close, logger)
}
