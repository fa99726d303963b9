// Package serviceconfig reads, from the environment, the settings every
// service of this project shares: where it listens, its log level and
// deployment, its HTTP timeouts and drain, and where its metrics and traces
// go. Each service's config.go calls Read once and reads its own settings
// beside it, with the same envconfig.Reader, so that every bad variable is
// reported in one error at start.
//
// This is the one place, with the services' config.go files, that reads the
// environment: the pattern packages (httpserver, metrics, tracing, ...) take
// typed options. The OpenTelemetry SDK also reads its own OTEL_* variables
// (the sampler, the resource attributes, the exporter's headers and
// timeouts): those stay the SDK's business. The README's configuration table
// lists every variable read here and in config.go (a test holds it equal).
//
// Depends on: internal/envconfig; the option types of internal/httpserver and
// internal/tracing and internal/exemplars; internal/logging's level parser.
package serviceconfig

import (
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/failready/failready/internal/envconfig"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/httpserver"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/tracing"
)

// Common is the settings block both services share.
type Common struct {
	ListenAddr   string
	DebugAddr    string // pprof and /debug/runtime on a private port; off when empty
	DeploymentID string
	LogLevel     slog.Level
	HTTP         httpserver.Timeouts
	StatsdAddr   string // where metrics go (DogStatsD over UDP); empty: nowhere
	Tracing      tracing.Config
	Exemplars    exemplars.Config // the OTel latency histograms, beside DogStatsD
}

// Read reads the common block; listenAddr is the service's default
// LISTEN_ADDR. Problems are collected in env (env.Err).
func Read(env *envconfig.Reader, listenAddr string) Common {
	c := Common{
		ListenAddr:   env.HostPort("LISTEN_ADDR", listenAddr),
		DeploymentID: env.String("DEPLOYMENT_ID", "local"),
		HTTP:         readTimeouts(env),
		StatsdAddr:   readStatsdAddr(env),
		Tracing:      readTracing(env),
	}
	c.Exemplars = readExemplars(env, c.Tracing.Disabled)
	if env.String("DEBUG_ADDR", "") != "" {
		c.DebugAddr = env.HostPort("DEBUG_ADDR", "")
	}
	lvl, err := logging.ParseLevel(env.String("LOG_LEVEL", "info"))
	env.Check("LOG_LEVEL", err)
	c.LogLevel = lvl
	return c
}

// readTimeouts reads HTTP_READ_HEADER_TIMEOUT, HTTP_READ_TIMEOUT,
// HTTP_WRITE_TIMEOUT, HTTP_IDLE_TIMEOUT, SHUTDOWN_DRAIN and SHUTDOWN_TIMEOUT.
// The defaults suit a JSON API whose requests finish within seconds; the
// write timeout must exceed the slowest handler, or its response is cut.
func readTimeouts(env *envconfig.Reader) httpserver.Timeouts {
	return httpserver.Timeouts{
		ReadHeader: env.Duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
		Read:       env.Duration("HTTP_READ_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute),
		Write:      env.Duration("HTTP_WRITE_TIMEOUT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
		Idle:       env.Duration("HTTP_IDLE_TIMEOUT", 120*time.Second, time.Second, time.Hour),
		Drain:      env.Duration("SHUTDOWN_DRAIN", 0, 0, time.Minute),
		Shutdown:   env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, 0, 5*time.Minute),
	}
}

// readStatsdAddr reads where to send metrics: STATSD_ADDR (host:port) when
// set, "off" to send none; otherwise DD_AGENT_HOST and DD_DOGSTATSD_PORT
// (8125 by default), the variables a Datadog agent setup already has;
// otherwise statsd-exporter's compose address.
func readStatsdAddr(env *envconfig.Reader) string {
	addr := env.String("STATSD_ADDR", "")
	if addr == "off" {
		return ""
	}
	if host := env.String("DD_AGENT_HOST", ""); host != "" && addr == "" {
		port := env.Int("DD_DOGSTATSD_PORT", 8125, 1, 65535)
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	return env.HostPort("STATSD_ADDR", "statsd-exporter:9125")
}

// readTracing reads OTEL_SDK_DISABLED, the OTLP endpoint (the traces one
// wins over OTEL_EXPORTER_OTLP_ENDPOINT), defaulting to the compose
// collector, and OTEL_BSP_MAX_EXPORT_BATCH_SIZE (the SDK's variable, read
// here because this project's default differs from the SDK's 512).
func readTracing(env *envconfig.Reader) tracing.Config {
	return tracing.Config{
		Disabled: env.OneOf("OTEL_SDK_DISABLED", "false", "true", "false") == "true",
		Endpoint: env.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
			env.String("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317")),
		// At most the SDK's queue (2048 spans): a batch cannot be larger.
		ExportBatchSize: env.Int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", tracing.DefaultExportBatchSize, 1, 2048),
	}
}

// readExemplars reads the OTLP endpoint of the latency
// histograms (the metrics one wins over OTEL_EXPORTER_OTLP_ENDPOINT), and
// OTEL_METRIC_EXPORT_INTERVAL in milliseconds (the SDK's variable, read here
// because this project's default, 5 s, differs from the SDK's minute).
// OTEL_SDK_DISABLED (disabled) turns them off with the traces.
func readExemplars(env *envconfig.Reader, disabled bool) exemplars.Config {
	return exemplars.Config{
		Disabled: disabled,
		Endpoint: env.String("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
			env.String("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317")),
		Interval: time.Duration(env.Int("OTEL_METRIC_EXPORT_INTERVAL",
			int(exemplars.DefaultInterval/time.Millisecond), 100, 600000)) * time.Millisecond,
	}
}
