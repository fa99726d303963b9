package exemplars_test

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/failready/failready/internal/exemplars"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manual is a provider read by hand, with the filter Setup uses.
func manual(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(exemplars.ProviderOptions(), sdkmetric.WithReader(r))...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, r
}

func spanContext(t *testing.T, sampled bool, seed byte) context.Context {
	t.Helper()
	cfg := trace.SpanContextConfig{TraceID: trace.TraceID{seed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		SpanID: trace.SpanID{seed, 1, 2, 3, 4, 5, 6, 7}}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(cfg))
}

// histogram collects the one histogram named name.
func histogram(t *testing.T, r *sdkmetric.ManualReader, name string) metricdata.Histogram[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				if m.Unit != "s" {
					t.Errorf("%s: unit %q, want s", name, m.Unit)
				}
				return m.Data.(metricdata.Histogram[float64])
			}
		}
	}
	t.Fatalf("no histogram %s in %+v", name, rm)
	return metricdata.Histogram[float64]{}
}

func TestLatencyKeepsTheSampledRequestAsItsBucketsExemplar(t *testing.T) {
	mp, r := manual(t)
	l, err := exemplars.NewLatency(mp, "task.duration", "test")
	if err != nil {
		t.Fatal(err)
	}
	attrs := exemplars.NewAttrs(10, func(k string) []attribute.KeyValue { return []attribute.KeyValue{attribute.String("k", k)} })
	l.Record(spanContext(t, true, 0xa1), 3*time.Millisecond, attrs.Get("x"))   // (0.0025, 0.005]
	l.Record(spanContext(t, false, 0xb2), 4*time.Millisecond, attrs.Get("x"))  // same bucket, not sampled
	l.Record(spanContext(t, true, 0xc3), 700*time.Millisecond, attrs.Get("x")) // (0.5, 1]
	l.Record(context.Background(), 20*time.Second, attrs.Get("x"))             // +Inf, no span

	h := histogram(t, r, "task.duration")
	if len(h.DataPoints) != 1 {
		t.Fatalf("%d data points, want 1 (one attribute set)", len(h.DataPoints))
	}
	dp := h.DataPoints[0]
	if dp.Count != 4 || len(dp.Bounds) != len(exemplars.Buckets) {
		t.Fatalf("count %d, %d bounds; want 4, %d", dp.Count, len(dp.Bounds), len(exemplars.Buckets))
	}
	if v, _ := dp.Attributes.Value("k"); v.AsString() != "x" {
		t.Errorf("attributes %v", dp.Attributes)
	}
	got := map[string]float64{}
	for _, e := range dp.Exemplars {
		got[hex.EncodeToString(e.TraceID)] = e.Value
	}
	want := map[string]float64{
		"a10102030405060708090a0b0c0d0e0f": 0.003,
		"c30102030405060708090a0b0c0d0e0f": 0.7,
	}
	if len(got) != len(want) {
		t.Fatalf("exemplars %v, want %v: only sampled requests", got, want)
	}
	for id, v := range want {
		if g, ok := got[id]; !ok || g != v {
			t.Errorf("exemplar of trace %s: %v, want %v", id, g, v)
		}
	}
}

func TestMiddlewareMeasuresByRouteAndStatus(t *testing.T) {
	mp, r := manual(t)
	mw, err := exemplars.Middleware(mp, "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	router := chi.NewRouter()
	router.Use(mw)
	router.Get("/users/{id}", func(w http.ResponseWriter, _ *http.Request) { time.Sleep(2 * time.Millisecond) })
	router.Get("/healthz", func(http.ResponseWriter, *http.Request) {})
	for i, path := range []string{"/users/1", "/users/2", "/nope", "/healthz"} {
		req := httptest.NewRequestWithContext(spanContext(t, true, byte(i+1)), "GET", path, nil)
		router.ServeHTTP(httptest.NewRecorder(), req)
	}

	h := histogram(t, r, exemplars.ServerRequestDuration)
	byRoute := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, dp := range h.DataPoints {
		route, _ := dp.Attributes.Value("http.route")
		method, _ := dp.Attributes.Value("http.request.method")
		if method.AsString() != "GET" {
			t.Errorf("method %q", method.AsString())
		}
		byRoute[route.AsString()] = dp
		if _, ok := dp.Attributes.Value("http.response.status_code"); ok || dp.Attributes.Len() != 2 {
			t.Errorf("attributes %v: want method and route only", dp.Attributes)
		}
		if _, ok := dp.Min.Value(); ok {
			t.Error("min recorded: Prometheus has no place for it")
		}
	}
	users, ok := byRoute["/users/{id}"]
	if !ok || users.Count != 2 || users.Sum < 0.004 {
		t.Fatalf("data points %v: want /users/{id} twice, each over 2 ms", byRoute)
	}
	if len(users.Exemplars) == 0 {
		t.Error("no exemplar on /users/{id}: every request was sampled")
	}
	if len(byRoute) != 2 {
		t.Errorf("data points %v: want /users/{id} and the unknown route's, and no probe", byRoute)
	}
	if _, ok := byRoute["/healthz"]; ok {
		t.Error("the probe was measured")
	}
}

func TestAttrsStopsCachingAtItsBound(t *testing.T) {
	built := 0
	a := exemplars.NewAttrs(2, func(k int) []attribute.KeyValue {
		built++
		return []attribute.KeyValue{attribute.Int("k", k)}
	})
	for range 3 {
		for k := range 4 {
			a.Get(k)
		}
	}
	// Keys 0 and 1 are built once; 2 and 3, past the bound, on every call.
	if built != 2+2*3 {
		t.Errorf("built %d times, want 8", built)
	}
}

// receiver is an OTLP gRPC metrics endpoint on loopback.
type receiver struct {
	colmetricspb.UnimplementedMetricsServiceServer
	mu   sync.Mutex
	reqs []*colmetricspb.ExportMetricsServiceRequest
}

func (r *receiver) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

func TestSetupExportsTheExemplarsOverOTLP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &receiver{}
	srv := grpc.NewServer()
	colmetricspb.RegisterMetricsServiceServer(srv, rcv)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	mp, shutdown, err := exemplars.Setup(context.Background(),
		exemplars.Config{Endpoint: "http://" + ln.Addr().String(), Interval: time.Hour},
		exemplars.Options{Service: "svc", Version: "v1", DeploymentID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := exemplars.NewLatency(mp, "task.duration", "test")
	if err != nil {
		t.Fatal(err)
	}
	l.Record(spanContext(t, true, 0xd4), 30*time.Millisecond, exemplars.NewAttrs(1, func(struct{}) []attribute.KeyValue { return nil }).Get(struct{}{}))
	_ = shutdown(context.Background()) // the last export

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var trace, service string
	for _, req := range rcv.reqs {
		for _, rm := range req.GetResourceMetrics() {
			for _, kv := range rm.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					for _, dp := range m.GetHistogram().GetDataPoints() {
						for _, e := range dp.GetExemplars() {
							trace = hex.EncodeToString(e.GetTraceId())
						}
					}
				}
			}
		}
	}
	if service != "svc" || trace != "d40102030405060708090a0b0c0d0e0f" {
		t.Errorf("received service %q, exemplar trace %q; want svc and the recorded span's trace", service, trace)
	}
}

// A collector that is not there costs a request nothing, and the exit is
// bounded.
func TestSetupWithNoCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mp, shutdown, err := exemplars.Setup(context.Background(),
		exemplars.Config{Endpoint: "http://" + addr, Interval: 50 * time.Millisecond}, exemplars.Options{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := exemplars.NewLatency(mp, "x.duration", "test")
	attrs := exemplars.NewAttrs(1, func(struct{}) []attribute.KeyValue { return nil }).Get(struct{}{})
	start := time.Now()
	for range 10000 {
		l.Record(spanContext(t, true, 1), time.Millisecond, attrs)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("10 000 records took %v with no collector", d)
	}
	start = time.Now()
	_ = shutdown(context.Background())
	if d := time.Since(start); d > exemplars.ShutdownTimeout+2*time.Second {
		t.Errorf("shutdown took %v, over its bound", d)
	}
}

func TestDisabledIsANoop(t *testing.T) {
	mp, shutdown, err := exemplars.Setup(context.Background(), exemplars.Config{Disabled: true}, exemplars.Options{})
	if err != nil || shutdown(context.Background()) != nil {
		t.Fatal(err)
	}
	if _, err := exemplars.NewLatency(mp, "x.duration", "test"); err != nil {
		t.Fatal(err)
	}
}
