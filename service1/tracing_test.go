package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing"
)

// tracedStack serves service1 (newServer, as run wires it) and a fake
// service2 behind the same otelhttp server handler, over real HTTP, both
// recording into one in-memory span recorder.
func tracedStack(t *testing.T, s2 *fakeService2) (base string, sr *tracetest.SpanRecorder, logs *logtest.Buffer, baggage *string, histograms *sdkmetric.ManualReader) {
	t.Helper()
	histograms = sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(exemplars.ProviderOptions(), sdkmetric.WithReader(histograms))...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	sr = tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tracing.Tracing{Provider: tp, Propagator: tracing.Propagator()}

	var bag string
	fake := httptest.NewServer(tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bag = r.Header.Get("Baggage")
		s2.ServeHTTP(w, r)
	})))
	t.Cleanup(fake.Close)
	u, _ := url.Parse(fake.URL)

	logs = &logtest.Buffer{}
	logger := logging.New(logs, logging.Options{Service: serviceName})
	m := metrics.New(metrics.Options{})
	t.Cleanup(func() { m.Close() })
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	client := newService2Client(u, cfg.Service2, logger, m, tr, mp)
	srv := httptest.NewServer(newServer(logger, m, tr, mp, client, cfg, &health.Gate{}))
	t.Cleanup(srv.Close)
	return srv.URL, sr, logs, &bag, histograms
}

func byName(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		key := s.Name()
		if s.SpanKind() == trace.SpanKindClient {
			key = "client"
		}
		if s.SpanKind() == trace.SpanKindServer && !strings.Contains(s.Name(), "/") {
			key = "service2 server" // the fake's span keeps otelhttp's method-only name
		}
		m[key] = s
	}
	return m
}

func TestOneRequestOneTrace(t *testing.T) {
	base, sr, logs, bag, histograms := tracedStack(t, &fakeService2{})
	req, _ := http.NewRequest("GET", base+"/users/1", nil)
	req.Header.Set(requestid.Header, "trace-me")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	spans := byName(sr.Ended())
	root, call, client, remote := spans["GET /users/{id}"], spans["service2-request"], spans["client"], spans["service2 server"]
	if root == nil || call == nil || client == nil || remote == nil {
		t.Fatalf("spans: %v", spans)
	}
	// The tree: service1 server → service2-request → HTTP client → service2 server.
	tid := root.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{call, client, remote} {
		if s.SpanContext().TraceID() != tid {
			t.Errorf("%s is in another trace", s.Name())
		}
	}
	if root.Parent().IsValid() || call.Parent().SpanID() != root.SpanContext().SpanID() ||
		client.Parent().SpanID() != call.SpanContext().SpanID() || remote.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Errorf("parent links broken: root %v, call→%v, client→%v, remote→%v",
			root.SpanContext().SpanID(), call.Parent().SpanID(), client.Parent().SpanID(), remote.Parent().SpanID())
	}
	if root.SpanKind() != trace.SpanKindServer || remote.SpanKind() != trace.SpanKindServer {
		t.Error("server spans have the wrong kind")
	}
	attrs := map[string]string{}
	for _, a := range root.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["request_id"] != "trace-me" || attrs["http.route"] != "/users/{id}" {
		t.Errorf("root attributes %v", attrs)
	}
	if !strings.Contains(*bag, "request_id=trace-me") {
		t.Errorf("baggage at service2: %q", *bag)
	}
	if got := resp.Header.Get("Traceresponse"); got != tracing.TraceResponse(root.SpanContext()) {
		t.Errorf("traceresponse %q, root %s", got, root.SpanContext().SpanID())
	}
	if resp.Header.Get(requestid.Header) != "trace-me" || tid.String() == "trace-me" {
		t.Error("the request ID must stay distinct from the trace ID")
	}

	// Every line logged for the request carries its trace and span.
	lines := logtest.Find(logs.Lines(t), map[string]any{"request_id": "trace-me"})
	if len(lines) == 0 {
		t.Fatal("no log line for the request")
	}
	for _, l := range lines {
		if l.Str("trace_id") != tid.String() || l.Str("span_id") == "" {
			t.Errorf("line without its trace: %v", l)
		}
	}

	// The latency histograms' exemplars are this trace: the server's at
	// the server span, the client's at the call's span.
	var rm metricdata.ResourceMetrics
	if err := histograms.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	want := map[string]trace.SpanID{exemplars.ServerRequestDuration: root.SpanContext().SpanID(), ClientRequestDuration: call.SpanContext().SpanID()}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			span, ok := want[m.Name]
			if !ok {
				continue
			}
			delete(want, m.Name)
			dps := m.Data.(metricdata.Histogram[float64]).DataPoints
			if len(dps) != 1 || len(dps[0].Exemplars) != 1 {
				t.Fatalf("%s: %+v, want one data point with one exemplar", m.Name, dps)
			}
			if e := dps[0].Exemplars[0]; trace.TraceID(e.TraceID) != tid || trace.SpanID(e.SpanID) != span {
				t.Errorf("%s: exemplar at trace %x span %x, want %s %s", m.Name, e.TraceID, e.SpanID, tid, span)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("no histogram %v", want)
	}
}

func TestFailuresAreErrorSpans(t *testing.T) {
	base, sr, _, _, _ := tracedStack(t, &fakeService2{fail: 503})
	for _, p := range []string{"/users/1", "/honeypot", "/healthz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	spans := byName(sr.Ended())
	for _, name := range []string{"GET /users/{id}", "service2-request", "GET /honeypot"} {
		s := spans[name]
		if s == nil || s.Status().Code != codes.Error {
			t.Errorf("%s: %v, want an error span", name, s)
		}
	}
	if ev := spans["GET /honeypot"].Events(); len(ev) == 0 || ev[0].Name != "exception" {
		t.Errorf("panic not recorded: %v", ev)
	}
	for name := range spans {
		if strings.Contains(name, "healthz") {
			t.Error("health probe traced")
		}
	}
}
