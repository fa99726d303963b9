//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/lokidoor"
	"github.com/failready/failready/devstack/lokidoor/lokitest"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// vendor stands in for an OTel-compatible vendor: OTLP/HTTP traces and
// logs under one base URL, as vendors take them, and the key header each
// request carried.
type vendor struct {
	srv    *http.Server
	ln     net.Listener
	traces otlptest.Receiver
	logs   *lokidoor.Door

	mu        sync.Mutex
	keys      map[string][]string // path → the x-vendor-key of each request
	exemplars map[string]int      // metric name → exemplars received
}

const vendorKey = "x-vendor-key"

func listenVendor(t *testing.T, addr string) *vendor {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	v := &vendor{ln: ln, logs: lokidoor.New(nil, 0), keys: map[string][]string{}, exemplars: map[string]int{}}
	mux := http.NewServeMux()
	mux.Handle("POST "+lokidoor.PushPath, v.logs.Handler()) // /otlp/v1/logs
	mux.HandleFunc("POST /otlp/v1/traces", v.exportTraces)
	mux.HandleFunc("POST /otlp/v1/metrics", v.exportMetrics)
	v.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.keys[r.URL.Path] = append(v.keys[r.URL.Path], r.Header.Get(vendorKey))
		v.mu.Unlock()
		mux.ServeHTTP(w, r)
	})}
	go func() { _ = v.srv.Serve(ln) }()
	t.Cleanup(func() { _ = v.srv.Close() })
	return v
}

func (v *vendor) URL() string { return "http://" + v.ln.Addr().String() + "/otlp" }

// exportMetrics takes an OTLP/HTTP metrics export and counts each
// histogram's exemplars by the metric's name.
func (v *vendor) exportMetrics(w http.ResponseWriter, r *http.Request) {
	var req colmetricspb.ExportMetricsServiceRequest
	if !lokidoor.ReadOTLP(w, r, &req) {
		return
	}
	v.mu.Lock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				for _, dp := range m.GetHistogram().GetDataPoints() {
					v.exemplars[m.GetName()] += len(dp.GetExemplars())
				}
			}
		}
	}
	v.mu.Unlock()
	b, _ := proto.Marshal(&colmetricspb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// exportTraces takes an OTLP/HTTP trace export, as the Loki door takes logs.
func (v *vendor) exportTraces(w http.ResponseWriter, r *http.Request) {
	var req coltracepb.ExportTraceServiceRequest
	if !lokidoor.ReadOTLP(w, r, &req) {
		return
	}
	_, _ = v.traces.Export(r.Context(), &req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// keysSeen is the set of key header values the requests to path carried.
func (v *vendor) keysSeen(path string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := slices.Clone(v.keys[path])
	slices.Sort(k)
	return slices.Compact(k)
}

// TestVendorFanOut: with VENDOR_OTLP_ENDPOINT set, the real collector sends
// every span it sends Jaeger, and every log record it sends Loki, to the
// vendor too, with the vendor's header; while the vendor is away, the
// services answer as before and Jaeger and Loki still get everything.
func TestVendorFanOut(t *testing.T) {
	loki := lokitest.ListenLogs(t)
	v := listenVendor(t, "127.0.0.1:0")
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN", "JAEGER_BIN"), ContainerLogs: t.TempDir(),
		Collector: devstack.CollectorOptions{LogsExportEndpoint: "http://" + loki.Addr() + "/otlp",
			VendorEndpoint: v.URL(), VendorHeaders: `{"` + vendorKey + `": "e2e-secret"}`}})

	// requests sends n creates and reads, and returns their trace IDs and
	// request IDs; each must answer as it always does, and promptly.
	requests := func(prefix string, n int) (traces []string, ids map[string]bool) {
		ids = map[string]bool{}
		for i := range n {
			id := fmt.Sprintf("%s-%02d", prefix, i)
			start := time.Now()
			r := call(t, "GET", st.Service1.URL()+"/users/1", "", map[string]string{requestid.Header: id})
			if r.status != 200 {
				t.Fatalf("%s: %d", id, r.status)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s took %v", id, took)
			}
			traces = append(traces, traceOf(t, r))
			ids[id] = true
		}
		return traces, ids
	}
	spanIDs := func(spans []otlptest.Span) []string {
		var out []string
		for _, s := range spans {
			out = append(out, s.Service+"/"+s.Name+"/"+s.SpanID)
		}
		sort.Strings(out)
		return out
	}
	// lines is the set of "service request_id body" of the records with
	// those request IDs.
	lines := func(recs []lokidoor.Record, ids map[string]bool) []string {
		var out []string
		for _, r := range recs {
			if ids[r.Attrs["request_id"]] {
				out = append(out, r.Resource["service.name"]+" "+r.Attrs["request_id"]+" "+r.Body)
			}
		}
		sort.Strings(out)
		return out
	}

	// 1. The vendor gets what Jaeger and Loki get.
	traces, ids := requests("e2e-vendor", 5)
	for _, tid := range traces {
		want := spanIDs(waitJaegerTrace(t, st.Jaeger.URL(), tid, 6, 30*time.Second))
		var got []string
		poll(20*time.Second, 200*time.Millisecond, func() bool {
			got = spanIDs(v.traces.Trace(tid))
			return len(got) >= len(want)
		})
		time.Sleep(time.Second) // stragglers, on both sides
		want, got = spanIDs(jaegerTrace(t, st.Jaeger.URL(), tid)), spanIDs(v.traces.Trace(tid))
		if !slices.Equal(got, want) {
			t.Errorf("trace %s: the vendor has %d spans, Jaeger %d:\nvendor %v\njaeger %v", tid, len(got), len(want), got, want)
		}
	}
	var want, got []string
	poll(30*time.Second, 200*time.Millisecond, func() bool {
		want, got = lines(loki.Records(), ids), lines(v.logs.Records(), ids)
		return len(want) >= 2*len(ids) && len(got) >= len(want)
	})
	time.Sleep(time.Second)
	want, got = lines(loki.Records(), ids), lines(v.logs.Records(), ids)
	if len(want) < 2*len(ids) || !slices.Equal(got, want) {
		t.Errorf("log records: the vendor has %d, Loki %d (want both services' lines for each of %d requests):\nvendor %v\nloki %v",
			len(got), len(want), len(ids), got, want)
	}
	// The histograms with exemplars too, under the semantic conventions'
	// names (the "otel." prefix is Prometheus's only).
	if _, ok := poll(20*time.Second, 200*time.Millisecond, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.exemplars["http.server.request.duration"] > 0 && v.exemplars["http.client.request.duration"] > 0
	}); !ok {
		v.mu.Lock()
		t.Errorf("the vendor's histograms and their exemplars: %v; want http.server.request.duration's and http.client.request.duration's", v.exemplars)
		v.mu.Unlock()
	}
	for _, path := range []string{"/otlp/v1/traces", lokidoor.PushPath, "/otlp/v1/metrics"} {
		if k := v.keysSeen(path); !slices.Equal(k, []string{"e2e-secret"}) {
			t.Errorf("%s: the vendor's header on its requests: %q, want only e2e-secret", path, k)
		}
	}
	t.Logf("the vendor received %d spans and %d log records, the same as Jaeger and Loki for the requests sent", len(v.traces.Spans()), len(v.logs.Records()))

	// 2. The vendor goes away: nothing else notices.
	_ = v.srv.Close()
	start := time.Now()
	traces, ids = requests("e2e-novendor", 20)
	t.Logf("20 requests with the vendor away took %v", time.Since(start).Round(time.Millisecond))
	for _, tid := range traces {
		waitJaegerTrace(t, st.Jaeger.URL(), tid, 6, 30*time.Second)
	}
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool { return len(lines(loki.Records(), ids)) >= 2*len(ids) }); !ok {
		t.Errorf("with the vendor away, Loki got %d of the %d lines", len(lines(loki.Records(), ids)), 2*len(ids))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := devstack.WaitReady(ctx, st.Service1.URL()+"/readyz", 5*time.Second); err != nil {
		t.Errorf("service1 with the vendor away: %v", err)
	}
}
