package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing"
	"github.com/failready/failready/internal/tracing/otlptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewJSONHandler(io.Discard, nil))

func setup(t *testing.T, endpoint string) (tracing.Tracing, func(context.Context) error) {
	t.Helper()
	tr, shutdown, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: endpoint},
		tracing.Options{Service: "svc", Version: "v9", DeploymentID: "dep", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	return tr, shutdown
}

func TestSetupExportsOTLPWithResource(t *testing.T) {
	rcv := otlptest.Listen(t)
	tr, shutdown := setup(t, "http://"+rcv.Addr())
	_, span := tr.Tracer("test").Start(context.Background(), "work")
	span.End()
	if err := shutdown(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	got := rcv.WaitTrace(t, span.SpanContext().TraceID().String(), 1, 5*time.Second)[0]
	for k, v := range map[string]string{
		"service.name": "svc", "service.version": "v9", "deployment.environment.name": "dep", "deployment.environment": "dep",
	} {
		if got.Resource[k] != v {
			t.Errorf("resource %s = %q, want %q", k, got.Resource[k], v)
		}
	}
	if got.Name != "work" {
		t.Errorf("span %+v", got)
	}
}

func TestSetupHonoursStandardVariables(t *testing.T) {
	rcv := otlptest.Listen(t)
	t.Setenv("OTEL_SERVICE_NAME", "renamed")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "team=sre")
	tr, shutdown := setup(t, "http://"+rcv.Addr())
	_, span := tr.Tracer("test").Start(context.Background(), "work")
	span.End()
	_ = shutdown(context.Background())
	got := rcv.WaitTrace(t, span.SpanContext().TraceID().String(), 1, 5*time.Second)[0]
	if got.Service != "renamed" || got.Resource["team"] != "sre" {
		t.Errorf("resource %v", got.Resource)
	}

	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	tr, shutdown = setup(t, "http://"+rcv.Addr())
	_, span = tr.Tracer("test").Start(context.Background(), "unsampled")
	span.End()
	_ = shutdown(context.Background())
	if span.SpanContext().IsSampled() {
		t.Error("OTEL_TRACES_SAMPLER=always_off ignored")
	}
}

// The export batch size bounds each export: 300 spans leave in at least
// three batches of 100 (serviceconfig reads it from
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 128 by default).
func TestExportBatchSize(t *testing.T) {
	c := tracing.Config{ExportBatchSize: 100}
	sink := otlptest.ListenSink(t)
	c.Endpoint = "http://" + sink.Addr()
	tr, shutdown, err := tracing.Setup(context.Background(), c, tracing.Options{Service: "svc", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		_, span := tr.Tracer("test").Start(context.Background(), "work")
		span.End()
	}
	if err := shutdown(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	if calls, _ := sink.Exports(); calls < 3 {
		t.Fatalf("300 spans in %d exports with a batch size of 100", calls)
	}
}

// TestBadCollectorCostsNothing: a collector that is dead (nothing listens),
// unresolvable, or a black hole (accepts and never answers): spans cost no
// wait, shutdown is bounded, and the exporter's goroutines end.
func TestBadCollectorCostsNothing(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	hole, _ := net.Listen("tcp", "127.0.0.1:0") // accepts (kernel backlog), never answers
	defer hole.Close()

	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2000") // ms: how long one export may retry
	for name, endpoint := range map[string]string{
		"dead":         dead,
		"unresolvable": "http://no-such-collector.invalid:4317",
		"black hole":   "http://" + hole.Addr().String(),
	} {
		t.Run(name, func(t *testing.T) {
			tr, shutdown := setup(t, endpoint)
			start := time.Now()
			for range 300 { // under one batch (512): one export, retrying until its timeout
				_, span := tr.Tracer("test").Start(context.Background(), "work")
				span.End()
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("300 spans took %s", el)
			}
			start = time.Now()
			_ = shutdown(context.Background())
			if el := time.Since(start); el > tracing.ShutdownTimeout+3*time.Second {
				t.Fatalf("shutdown took %s", el)
			}
			// The last export goes on retrying until its own timeout
			// (OTEL_EXPORTER_OTLP_TIMEOUT), then its goroutines end.
			deadline := time.Now().Add(20 * time.Second)
			for goleak.Find() != nil && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
			}
			if err := goleak.Find(); err != nil {
				t.Fatalf("exporter goroutines outlived their timeout: %v", err)
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	tr, shutdown, err := tracing.Setup(context.Background(), tracing.Config{Disabled: true, Endpoint: "http://x:1"}, tracing.Options{Logger: discard})
	if err != nil || shutdown(context.Background()) != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer("t").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("a disabled provider made a real span")
	}
}

// recorded serves a chi router the way router.New and router.Handler wire it.
func recorded(t *testing.T) (*tracetest.SpanRecorder, tracing.Tracing, *chi.Mux) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tracing.Tracing{Provider: tp, Propagator: tracing.Propagator()}
	r := chi.NewRouter()
	r.Use(requestid.Middleware(logging.New(io.Discard, logging.Options{})), tracing.Middleware())
	return sr, tr, r
}

func TestMiddlewareNamesSpansByRoute(t *testing.T) {
	sr, tr, r := recorded(t)
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	r.Get("/healthz", func(http.ResponseWriter, *http.Request) {})
	h := tr.Handler(r, "/healthz")

	req := httptest.NewRequest("GET", "/users/42", nil)
	req.Header.Set(requestid.Header, "rid-7")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))

	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("want 1 span (the probe is not traced), got %d", len(spans))
	}
	s := spans[0]
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if s.Name() != "GET /users/{id}" || attrs["http.route"] != "/users/{id}" || attrs[tracing.RequestIDKey] != "rid-7" {
		t.Errorf("span %q %v", s.Name(), attrs)
	}
	if want := tracing.TraceResponse(s.SpanContext()); rec.Header().Get("Traceresponse") != want || !strings.HasSuffix(want, "-01") {
		t.Errorf("traceresponse %q, want %q", rec.Header().Get("Traceresponse"), want)
	}
}

// The transport puts the request ID in the baggage of each call, beside
// whatever baggage the request already carries, and the next hop's server
// extracts it.
func TestTransportSendsTheRequestIDAsBaggage(t *testing.T) {
	_, tr, _ := recorded(t)
	var bag baggage.Baggage
	srv := httptest.NewServer(tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bag = baggage.FromContext(r.Context())
	})))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: tr.Transport(http.DefaultTransport)}

	tenant, _ := baggage.NewMemberRaw("tenant", "acme")
	b, _ := baggage.New(tenant)
	ctx := requestid.NewContext(baggage.ContextWithBaggage(context.Background(), b), "rid-9")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if bag.Member(tracing.RequestIDKey).Value() != "rid-9" || bag.Member("tenant").Value() != "acme" {
		t.Errorf("baggage at the next hop: %q", bag.String())
	}
	if baggage.FromContext(req.Context()).Member(tracing.RequestIDKey).Value() != "" {
		t.Error("the transport changed the caller's request")
	}
}

func TestPanicAndServerErrorsMarkTheSpan(t *testing.T) {
	sr, tr, r := recorded(t)
	r.Get("/boom", func(w http.ResponseWriter, r *http.Request) {
		tracing.RecordPanic(r, "kaboom")
		w.WriteHeader(500)
	})
	r.Get("/bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	h := tr.Handler(r)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/bad", nil))
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("spans: %d", len(spans))
	}
	for _, s := range spans {
		if s.Status().Code != codes.Error {
			t.Errorf("%s: status %v, want Error", s.Name(), s.Status())
		}
	}
	if ev := spans[0].Events(); len(ev) == 0 || ev[0].Name != "exception" {
		t.Errorf("panic span events %v", ev)
	}
}

func TestTraceResponseFormat(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	if got, want := tracing.TraceResponse(sc), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	sc = sc.WithTraceFlags(0)
	if got := tracing.TraceResponse(sc); got[53:] != "00" {
		t.Fatalf("unsampled flags: %s", got)
	}
}
