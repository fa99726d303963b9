// Command worker does the tasks service2 records: it consumes the welcome
// tasks from NATS JetStream (a durable pull consumer, internal/consumer)
// and writes one welcome message per task. Its HTTP listener serves only
// the probes: liveness is "the consume loop makes progress", readiness
// "NATS and MySQL answer".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/app/mysqldb"
	"github.com/failready/failready/app/router"
	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/internal/consumer"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/httpserver"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/outage"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/tracing"
)

const serviceName = "worker"

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
	defer shutdownTracing(context.Background())
	mp, shutdownExemplars, err := exemplars.Setup(ctx, cfg.Exemplars, exemplars.Options{
		Service: serviceName, Version: version, DeploymentID: cfg.DeploymentID, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer shutdownExemplars(context.Background())
	took, err := exemplars.NewLatency(mp, TaskProcessDuration, "Time to handle one delivery of a task (the process span's duration).")
	if err != nil {
		return err
	}
	db, err := mysqldb.Open(cfg.MySQL, logger, tr)
	if err != nil {
		return err
	}
	defer db.Close() // last: after the consumer has stopped
	m := metrics.New(metrics.Options{Addr: cfg.StatsdAddr, Service: serviceName, Version: version, Logger: logger})
	defer m.Close()

	nc, err := tasks.Connect(cfg.NATSURL, "worker", logger)
	if err != nil {
		return fmt.Errorf("NATS_URL: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	w := &welcome{db: db, queryTimeout: cfg.MySQL.QueryTimeout, latency: cfg.TaskLatency, failureRate: cfg.TaskFailureRate,
		tr: tr, tracer: tr.Tracer("failready/worker"), logger: logger, metrics: m, took: took, tookAttrs: processAttrs()}
	var running atomic.Pointer[consumer.Consumer]
	live := func(context.Context) error {
		if c := running.Load(); c != nil {
			return c.Live()
		}
		return nil // still finding its stream: starting, not stuck
	}
	ready := health.All(
		func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("nats not connected")
			}
			return nil
		},
		func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, cfg.MySQL.PingTimeout)
			defer cancel()
			return db.PingContext(ctx)
		})
	r := router.New(logger, m, mp)
	// Liveness checks the consume loop, and nothing outside the process.
	r.Method("GET", health.LivePath, health.LiveIf(live, "the consume loop makes no progress", logger, respond.Error))
	r.Method("GET", health.ReadyPath, health.Ready(ready, "nats or mysql unavailable", logger, respond.Error))
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on LISTEN_ADDR: %w", err)
	}
	srv := httpserver.New(router.Handler(r, tr), cfg.HTTP, logger)
	logger.Info("starting", "nats_url", cfg.NATSURL, "concurrency", cfg.Concurrency, "max_deliver", cfg.MaxDeliver,
		"task_latency", cfg.TaskLatency.String(), "task_failure_rate", cfg.TaskFailureRate, "go_version", runtime.Version())

	// The consumer: once its stream and consumer exist (NATS may come up
	// after the worker), until SIGTERM; then the probes stop.
	consumed := make(chan struct{})
	cctx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	go func() {
		defer close(consumed)
		cons, err := declare(cctx, js, cfg, logger)
		if err != nil {
			return // stopped before NATS came
		}
		c := consumer.New(cons, w.handle, consumer.Options{
			Concurrency: cfg.Concurrency, MaxDeliver: cfg.MaxDeliver, StuckAfter: cfg.StuckAfter,
			ShutdownTimeout: cfg.HTTP.Shutdown, DeadLetter: deadLetter(js), Logger: logger, Observe: observe(m),
		})
		m.AddCollector(queueCollector(c, cons, tasks.WelcomeConsumer(0, 0).Durable))
		running.Store(c)
		c.Run(cctx)
	}()
	err = httpserver.Run(ctx, srv, ln, cfg.HTTP, nil, logger)
	stopConsuming()
	<-consumed
	logger.Info("stopped consuming")
	return err
}

// declare makes sure the streams and the consumer exist, trying again
// every second while NATS is away (logged as an outage: once, once a
// minute, and when JetStream answers).
func declare(ctx context.Context, js jetstream.JetStream, cfg config, logger *slog.Logger) (jetstream.Consumer, error) {
	away := outage.New("nats jetstream", outage.Options{Logger: logger})
	for {
		cons, err := func() (jetstream.Consumer, error) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := tasks.DeclareStreams(ctx, js); err != nil {
				return nil, err
			}
			return js.CreateOrUpdateConsumer(ctx, tasks.Stream, tasks.WelcomeConsumer(cfg.AckWait, 4*cfg.Concurrency))
		}()
		away.Report(ctx, err)
		if err == nil {
			return cons, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
