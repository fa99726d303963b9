// Package exemplars records latency histograms through the OpenTelemetry
// metrics SDK, so that each bucket carries an exemplar: the trace ID of a
// sampled request that fell in it. A latency panel can then open the trace
// of a slow request in one click, which DogStatsD cannot do (statsd has no
// place for an exemplar). These histograms go beside the service's
// DogStatsD ones, never instead of them.
//
// Setup returns a MeterProvider that exports over OTLP gRPC to the
// collector every Interval, from its own goroutine: a request only updates
// a histogram in memory (a lock, a bucket, and the span's IDs when the
// request is sampled), and a dead collector costs the lost exports. A
// histogram's exemplar is the latest sampled measurement in each bucket
// (the SDK's trace-based filter and bucket-aligned reservoir), so the
// slowest bucket's exemplar is always a slow request.
//
// Latency is a histogram in seconds with Buckets; Attrs caches one
// attribute set per key, so the hot path builds none. Middleware measures
// an HTTP server as OpenTelemetry's semantic conventions name it
// (http.server.request.duration by method and route: http.go says why not
// the status code too).
//
// Config comes from the caller (serviceconfig reads OTEL_SDK_DISABLED, the
// OTLP endpoint and OTEL_METRIC_EXPORT_INTERVAL into it); the exporter
// still reads its own OTEL_EXPORTER_OTLP_* settings, and the resource
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// Depends on: go.opentelemetry.io/otel (API, metrics SDK, OTLP gRPC metric
// exporter), github.com/go-chi/chi/v5/middleware (the response recorder),
// internal/httplabel.
//
// Tests use: github.com/go-chi/chi/v5, go.uber.org/goleak,
// go.opentelemetry.io/proto/otlp and google.golang.org/grpc (a receiver).
package exemplars

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Config says whether, where and how often the histograms are exported.
type Config struct {
	Disabled bool
	Endpoint string        // the collector's OTLP gRPC endpoint, a URL
	Interval time.Duration // between exports; DefaultInterval when zero
}

// DefaultInterval is the export interval: Prometheus's scrape interval here,
// so a panel moves as fast as the DogStatsD ones (the SDK's default is a
// minute).
const DefaultInterval = 5 * time.Second

// Options name the service in its resource.
type Options struct {
	Service, Version, DeploymentID string
	Logger                         *slog.Logger
}

// ShutdownTimeout bounds the final export at exit. It is short: the
// process also flushes its spans at exit (5 s at most), and what is lost
// here is one interval of counts.
const ShutdownTimeout = 2 * time.Second

// Setup builds the meter provider: a noop one when c.Disabled. The returned
// shutdown sends what was recorded since the last export, within
// ShutdownTimeout, and never fails the exit of the process.
func Setup(ctx context.Context, c Config, o Options) (metric.MeterProvider, func(context.Context) error, error) {
	noShutdown := func(context.Context) error { return nil }
	if c.Disabled {
		return noop.NewMeterProvider(), noShutdown, nil
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// No retries: each export carries the cumulative counts, so the next
	// one makes up for one that failed; a retried export would only hold
	// the exit (and the reader) while the collector is away.
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(c.Endpoint),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	if err != nil {
		return nil, noShutdown, fmt.Errorf("OTLP metric exporter for %s: %w", c.Endpoint, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(o.Service),
			semconv.ServiceVersion(o.Version),
			semconv.DeploymentEnvironmentName(o.DeploymentID),
		),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, noShutdown, fmt.Errorf("resource: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(append(ProviderOptions(),
		sdkmetric.WithResource(res),
		// An export that cannot finish within the interval is abandoned;
		// the next one carries the same cumulative counts.
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp,
			sdkmetric.WithInterval(c.Interval), sdkmetric.WithTimeout(c.Interval))),
	)...)
	o.Logger.Info("exemplars: exporting OTLP gRPC histograms", "endpoint", c.Endpoint, "interval", c.Interval.String())
	shutdown := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
		defer cancel()
		if err := mp.Shutdown(ctx); err != nil {
			o.Logger.Warn("exemplars: histograms lost at shutdown", "error", err.Error())
		}
		return nil
	}
	return mp, shutdown, nil
}

// ProviderOptions are Setup's choices for a meter provider (tests and
// benchmarks build theirs with a reader of their own and these):
//   - exemplars from sampled spans only: their traces are the ones a trace
//     backend has;
//   - this package's histograms without min and max, which Prometheus has
//     no place for and which cost every request a compare-and-swap each.
func ProviderOptions() []sdkmetric.Option {
	return []sdkmetric.Option{
		sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Scope: instrumentation.Scope{Name: Scope}},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: Buckets, NoMinMax: true}})),
	}
}

// Buckets are the latency histograms' upper bounds in seconds: the same as
// the DogStatsD histograms' (statsd-exporter's mapping), so that the two
// sources of one latency agree bucket for bucket.
var Buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Scope is the instrumentation scope of the histograms.
const Scope = "github.com/failready/failready/internal/exemplars"

// Latency is a duration histogram in seconds; its zero value records
// nothing.
type Latency struct{ h metric.Float64Histogram }

// NewLatency creates the histogram name (in OpenTelemetry's dotted form:
// the Prometheus name is derived from it and its unit).
func NewLatency(mp metric.MeterProvider, name, description string) (Latency, error) {
	h, err := mp.Meter(Scope).Float64Histogram(name, metric.WithUnit("s"),
		metric.WithDescription(description), metric.WithExplicitBucketBoundaries(Buckets...))
	if err != nil {
		return Latency{}, fmt.Errorf("histogram %s: %w", name, err)
	}
	return Latency{h}, nil
}

// Record adds d to the histogram; when ctx holds a sampled span, its trace
// and span IDs become the bucket's exemplar. attrs comes from an Attrs
// cache.
func (l Latency) Record(ctx context.Context, d time.Duration, attrs Attributes) {
	if l.h != nil {
		l.h.Record(ctx, d.Seconds(), attrs...) // an existing slice: nothing allocated
	}
}

// Attributes are a measurement's attributes, as the record options the
// SDK takes.
type Attributes []metric.RecordOption

// Attrs caches one attribute set per key, so that the hot path builds none
// and allocates nothing (a map behind a read lock: a sync.Map would box
// each key). It keeps at most max keys; past that, each new key is built on
// every call (a bound on memory if a label ever goes unbounded).
type Attrs[K comparable] struct {
	build func(K) []attribute.KeyValue
	mu    sync.RWMutex
	m     map[K]Attributes
	max   int
}

// NewAttrs returns a cache of at most max keys.
func NewAttrs[K comparable](max int, build func(K) []attribute.KeyValue) *Attrs[K] {
	return &Attrs[K]{build: build, m: make(map[K]Attributes), max: max}
}

// Get returns k's attributes.
func (a *Attrs[K]) Get(k K) Attributes {
	a.mu.RLock()
	v, ok := a.m[k]
	a.mu.RUnlock()
	if ok {
		return v
	}
	v = Attributes{metric.WithAttributeSet(attribute.NewSet(a.build(k)...))}
	a.mu.Lock()
	if len(a.m) < a.max {
		a.m[k] = v
	}
	a.mu.Unlock()
	return v
}
