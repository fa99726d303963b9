package main

// Benchmarks of the middleware and client stacks as service1 wires them,
// against baselines measured in the same run (make bench reports the
// ratios: see BENCHMARKS.md). They need no network but loopback.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/deadline"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/ratelimit"
	"github.com/failready/failready/internal/recoverer"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/shed"
	"github.com/failready/failready/internal/tracing"
)

// benchTracing is a real SDK provider, every span sampled, exported in
// batches (the services' own batcher and batch size) to an exporter that
// keeps nothing: the cost of tracing without the cost of a collector.
func benchTracing(b testing.TB) tracing.Tracing {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(
		tracing.NewBatcher(tracetest.NewNoopExporter(), tracing.BatchOptions{BatchSize: tracing.DefaultExportBatchSize})))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.Tracing{Provider: tp, Propagator: tracing.Propagator()}
}

// stubService2 answers the calls the benchmarked handler makes, in memory.
type stubService2 struct{}

func (stubService2) ListUsers(context.Context) ([]user.User, error) {
	return []user.User{{ID: 1, FirstName: "joe", LastName: "cool"}}, nil
}
func (stubService2) GetUser(context.Context, int64) (user.User, error) {
	return user.User{ID: 1, FirstName: "joe", LastName: "cool"}, nil
}
func (stubService2) CreateUser(context.Context, user.New, string) (user.User, error) {
	return user.User{}, nil
}
func (stubService2) Ready(context.Context, time.Duration) error { return nil }

// statsdSink is a real UDP socket for the metrics that nothing reads: the
// sends cost what they cost in production, and no receiver in this process
// adds allocations of its own to the measurement.
func statsdSink(b testing.TB) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// benchHistograms is a real metrics SDK with the services' exemplar filter,
// read by nobody: what recording a histogram costs a request (the export
// runs on its own goroutine, every few seconds, off the request's path).
func benchHistograms(tb testing.TB) metric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(append(exemplars.ProviderOptions(), sdkmetric.WithReader(sdkmetric.NewManualReader()))...)
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// benchDeps are newServer's dependencies as the full-stack benchmark uses
// them: a real SDK for the spans and one for the histograms, a JSON logger
// writing to io.Discard, metrics to a real UDP socket, and rate limits too
// high to refuse anything.
func benchDeps(tb testing.TB) (tracing.Tracing, *slog.Logger, *metrics.Client, metric.MeterProvider, config) {
	m := metrics.New(metrics.Options{Addr: statsdSink(tb), Service: "bench"})
	tb.Cleanup(func() { m.Close() })
	logger := logging.New(io.Discard, logging.Options{Service: "bench", Level: slog.LevelInfo})
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"RATE_LIMIT_PER_CLIENT": "1000000", "RATE_LIMIT_GLOBAL": "10000000"}[k]
	})
	if err != nil {
		tb.Fatal(err)
	}
	return benchTracing(tb), logger, m, benchHistograms(tb), cfg
}

func serveBench(b *testing.B, h http.Handler) {
	b.Helper()
	req := httptest.NewRequest("GET", "/users/1", nil)
	req.RemoteAddr = "10.1.2.3:4567"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func handlerUnderTest() http.Handler { return handleGetUser(stubService2{}) }

// BenchmarkServer/bare: chi and the handler, nothing else.
// BenchmarkServer/otelhttp: the same inside otelhttp with a real SDK.
// BenchmarkServer/full: exactly as newServer wires it: request ID, tracing,
// access log (to io.Discard), metrics (to a real UDP socket), recovery, rate
// limit, shedding and deadline.
func BenchmarkServer(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		r := chi.NewRouter()
		r.Method("GET", "/users/{id}", handlerUnderTest())
		serveBench(b, r)
	})
	b.Run("otelhttp", func(b *testing.B) {
		tr := benchTracing(b)
		r := chi.NewRouter()
		r.Method("GET", "/users/{id}", handlerUnderTest())
		serveBench(b, otelhttp.NewHandler(r, "server", otelhttp.WithTracerProvider(tr.Provider), otelhttp.WithPropagators(tr.Propagator)))
	})
	b.Run("full", func(b *testing.B) {
		tr, logger, m, mp, cfg := benchDeps(b)
		serveBench(b, newServer(logger, m, tr, mp, stubService2{}, cfg, &health.Gate{}))
	})
}

// BenchmarkClient/bare: an http.Client GET and JSON decode against a local
// service2 stand-in. BenchmarkClient/full: service2Client.GetUser, with the
// tracing transport, request ID and deadline headers, breaker, retry
// bookkeeping and metrics.
func BenchmarkClient(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond.JSON(w, 200, user.User{ID: 1, FirstName: "joe", LastName: "cool"})
	}))
	b.Cleanup(srv.Close)
	b.Run("bare", func(b *testing.B) {
		c := &http.Client{}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Get(srv.URL + "/users/1")
			if err != nil {
				b.Fatal(err)
			}
			var u user.User
			if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
	b.Run("full", func(b *testing.B) {
		m := metrics.New(metrics.Options{Addr: statsdSink(b), Service: "bench"})
		b.Cleanup(func() { m.Close() })
		cfg, _ := loadConfig(func(string) string { return "" })
		u, _ := url.Parse(srv.URL)
		c := newService2Client(u, cfg.Service2, slog.New(slog.DiscardHandler), m, benchTracing(b), benchHistograms(b))
		ctx, span := benchTracing(b).Tracer("bench").Start(context.Background(), "request")
		defer span.End()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.GetUser(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExemplarCost: what the OpenTelemetry latency histogram (with its
// exemplar) adds to a request, as the services wire it: told of each
// request by the DogStatsD middleware, which already has the timer, the
// route and the status. The perf gate holds "with" − "without" under its
// budget. The DogStatsD client here sends nothing and samples nothing (no
// goroutine that runs by the clock: under callgrind, whatever runs by the
// clock is counted in proportion to how slow the machine is that minute).
func BenchmarkExemplarCost(b *testing.B) {
	for _, name := range []string{"without", "with"} {
		b.Run(name, func(b *testing.B) {
			m := metrics.New(metrics.Options{Service: "bench", Interval: time.Hour})
			b.Cleanup(func() { m.Close() })
			var observe metrics.Observer
			if name == "with" {
				s, err := exemplars.NewServer(benchHistograms(b))
				if err != nil {
					b.Fatal(err)
				}
				observe = s.Observe
			}
			r := chi.NewRouter()
			r.Use(m.MiddlewareWith(observe, health.LivePath))
			r.Method("GET", "/users/{id}", handlerUnderTest())
			serveBench(b, benchTracing(b).Handler(r))
		})
	}
}

func exemplarsMiddleware(b *testing.B) func(http.Handler) http.Handler {
	mw, err := exemplars.Middleware(benchHistograms(b), health.LivePath)
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

// BenchmarkMiddleware: what each middleware of the full stack costs on its
// own, inside otelhttp (the "none" baseline), so that an adopter can weigh
// each pattern; benchratio reports each one's difference from "none".
func BenchmarkMiddleware(b *testing.B) {
	logger := logging.New(io.Discard, logging.Options{Service: "bench", Level: slog.LevelInfo})
	parts := map[string]func(m *metrics.Client) func(http.Handler) http.Handler{
		"requestid": func(*metrics.Client) func(http.Handler) http.Handler { return requestid.Middleware(logger) },
		"tracingmw": func(*metrics.Client) func(http.Handler) http.Handler { return tracing.Middleware() },
		"accesslog": func(*metrics.Client) func(http.Handler) http.Handler {
			return logging.AccessLog(logger)
		},
		"metrics": func(m *metrics.Client) func(http.Handler) http.Handler { return m.Middleware(health.LivePath) },
		"recoverer": func(m *metrics.Client) func(http.Handler) http.Handler {
			return recoverer.Middleware(logger, respond.Error, m.PanicCounter(), tracing.RecordPanic)
		},
		"ratelimit": func(*metrics.Client) func(http.Handler) http.Handler {
			return health.Bypass(ratelimit.Middleware(ratelimit.Limits{PerClient: 1000000, Global: 10000000, Window: time.Second}, nil, respond.Error))
		},
		"shed": func(*metrics.Client) func(http.Handler) http.Handler {
			return health.Bypass(shed.Limit(100, nil, respond.Error))
		},
		"deadline":  func(*metrics.Client) func(http.Handler) http.Handler { return deadline.Middleware(3 * time.Second) },
		"exemplars": func(*metrics.Client) func(http.Handler) http.Handler { return exemplarsMiddleware(b) },
	}
	for _, name := range []string{"none", "requestid", "tracingmw", "accesslog", "metrics", "exemplars", "recoverer", "ratelimit", "shed", "deadline"} {
		b.Run(name, func(b *testing.B) {
			tr := benchTracing(b)
			m := metrics.New(metrics.Options{Addr: statsdSink(b), Service: "bench"})
			b.Cleanup(func() { m.Close() })
			r := chi.NewRouter()
			if name != "none" {
				r.Use(parts[name](m))
			}
			r.Method("GET", "/users/{id}", handlerUnderTest())
			serveBench(b, tr.Handler(r))
		})
	}
}
