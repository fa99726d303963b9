// Package tracing sets up OpenTelemetry tracing for a service and gives the
// HTTP server its spans.
//
// Setup returns one Tracing value (the provider and the propagator, passed
// explicitly to everything that traces) and one shutdown func. Spans leave
// through a Batcher (this package's batch processor: the SDK's, with one
// goroutine wake-up per batch instead of per span) and the OTLP gRPC
// exporter to the collector, so a request never waits on the collector: when
// it is dead, slow or does not resolve, the queue fills and the newest spans
// are dropped and counted in the log. Shutdown is bounded, so a service with
// an unreachable collector still exits promptly.
//
// Config comes from the caller (serviceconfig reads OTEL_SDK_DISABLED, the
// OTLP endpoint and OTEL_BSP_MAX_EXPORT_BATCH_SIZE into it; the other
// OTEL_BSP_* variables do not apply to the Batcher); the SDK itself still
// reads its own variables: the exporter's other OTEL_EXPORTER_OTLP_*
// settings, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER
// and OTEL_TRACES_SAMPLER_ARG.
//
// Depends on: go.opentelemetry.io/otel (API, SDK, OTLP gRPC exporter),
// go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp,
// internal/requestid and internal/httplabel.
//
// Tests use: github.com/go-chi/chi/v5, go.uber.org/goleak, internal/logging,
// internal/tracing/otlptest.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is what the code that traces needs: where spans go and how the
// context crosses process boundaries.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
}

// Tracer returns a tracer for the instrumentation scope name.
func (t Tracing) Tracer(name string) trace.Tracer { return t.Provider.Tracer(name) }

// Disabled traces nothing (tests that are not about tracing; OTEL_SDK_DISABLED).
func Disabled() Tracing {
	return Tracing{Provider: noop.NewTracerProvider(), Propagator: Propagator()}
}

// Propagator is W3C Trace Context plus W3C Baggage, set explicitly.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Config says whether and where spans are exported (serviceconfig reads it
// from the environment).
type Config struct {
	Disabled bool
	Endpoint string // the collector's OTLP gRPC endpoint, a URL
	// ExportBatchSize is the most spans sent in one export; 0 leaves it to
	// the SDK (512).
	ExportBatchSize int
}

// DefaultExportBatchSize is smaller than the SDK's 512: the same spans in
// more, smaller exports, so that each burst of marshalling (here, and in a
// collector on the same cores) delays fewer requests. make bench-load, with
// the SDK's processor and the collector on the same 2 cores, showed the p99
// at 1.30× and 1.37× of telemetry off with 128, against 1.83× and 1.73× with
// 512; try another size with BENCH_EXTRA_ENV (BENCHMARKS.md).
const DefaultExportBatchSize = 128

// Options name the service in its resource.
type Options struct {
	Service, Version, DeploymentID string
	Logger                         *slog.Logger
}

// ExportTimeout bounds one export, retries included: a collector that
// accepts the connection and never answers holds the batch this long.
const ExportTimeout = 10 * time.Second

// ShutdownTimeout bounds the final flush at exit.
const ShutdownTimeout = 5 * time.Second

// Setup builds the tracer provider. The returned shutdown flushes what is
// queued, within ShutdownTimeout, and never fails the exit of the process.
func Setup(ctx context.Context, c Config, o Options) (Tracing, func(context.Context) error, error) {
	noShutdown := func(context.Context) error { return nil }
	if c.Disabled {
		return Disabled(), noShutdown, nil
	}
	// OTel reports export failures here; a dead collector must not flood
	// the log either.
	otel.SetErrorHandler(rateLimited(o.Logger, time.Minute))

	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(c.Endpoint))
	if err != nil {
		return Tracing{}, noShutdown, fmt.Errorf("OTLP exporter for %s: %w", c.Endpoint, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(o.Service),
			semconv.ServiceVersion(o.Version),
			semconv.DeploymentEnvironmentName(o.DeploymentID),
			// The older key, which many backends still group by.
			attribute.String("deployment.environment", o.DeploymentID),
		),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return Tracing{}, noShutdown, fmt.Errorf("resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		// Drops when full; never blocks a request; one wake-up per batch.
		sdktrace.WithSpanProcessor(NewBatcher(exp, BatchOptions{BatchSize: c.ExportBatchSize, ExportTimeout: ExportTimeout})),
		sdktrace.WithResource(res),
		// The sampler comes from OTEL_TRACES_SAMPLER (parentbased_always_on by default).
	)
	t := Tracing{Provider: tp, Propagator: Propagator()}
	// For libraries that only know the globals.
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(t.Propagator)
	o.Logger.Info("tracing: exporting OTLP gRPC", "endpoint", c.Endpoint)

	shutdown := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			o.Logger.Warn("tracing: spans lost at shutdown", "error", err.Error())
		}
		return nil
	}
	return t, shutdown, nil
}

// rateLimited logs OTel's internal errors at most once per interval.
func rateLimited(logger *slog.Logger, interval time.Duration) otel.ErrorHandler {
	var last atomic.Int64
	var dropped atomic.Int64
	return otel.ErrorHandlerFunc(func(err error) {
		now := time.Now().UnixNano()
		prev := last.Load()
		if now-prev < int64(interval) || !last.CompareAndSwap(prev, now) {
			dropped.Add(1)
			return
		}
		logger.Warn("tracing: OpenTelemetry error (similar errors muted for a while)",
			"error", err.Error(), "muted_since_last", dropped.Swap(0))
	})
}
