//go:build e2e

package e2e

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// traceOf returns the trace ID in a reply's traceresponse header.
func traceOf(t *testing.T, r reply) string {
	t.Helper()
	parts := strings.Split(r.header.Get("Traceresponse"), "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		t.Fatalf("traceresponse %q", r.header.Get("Traceresponse"))
	}
	return parts[1]
}

func TestCollectorConfigValidates(t *testing.T) {
	bin := toolBin(t, "OTELCOL_BIN")
	if out, err := exec.Command(bin, "validate", "--config="+filepath.Join(repoRoot, devstack.CollectorConfigFile)).CombinedOutput(); err != nil {
		t.Fatalf("otelcol validate: %v\n%s", err, out)
	}
}

// TestTracesThroughTheCollector: the real services send OTLP to the real
// collector built from the project's manifest and run with its config, which
// exports to the real Jaeger run with deploy/jaeger/config.yaml (as compose
// runs them). Whole traces come back from Jaeger's query API, the one
// Grafana's Jaeger data source reads, parent links intact.
func TestTracesThroughTheCollector(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN", "JAEGER_BIN")})

	resp := call(t, "GET", st.Service1.URL()+"/users/1", "", map[string]string{requestid.Header: "e2e-trace-1"})
	if resp.status != 200 {
		t.Fatalf("GET /users/1: %d", resp.status)
	}
	tid := traceOf(t, resp)
	waitJaegerTrace(t, st.Jaeger.URL(), tid, 6, 30*time.Second)
	// Give stragglers (statement spans end before their parents) a moment.
	time.Sleep(2 * time.Second)
	spans := jaegerTrace(t, st.Jaeger.URL(), tid)

	ids := map[string]otlptest.Span{}
	for _, s := range spans {
		ids[s.SpanID] = s
	}
	find := func(service, name, kind string) otlptest.Span {
		for _, s := range spans {
			if s.Service == service && (name == "" || s.Name == name) && (kind == "" || s.Kind == kind) {
				return s
			}
		}
		t.Fatalf("no %s span %q (%s) in %+v", service, name, kind, spans)
		return otlptest.Span{}
	}
	root := find("service1", "GET /users/{id}", "SPAN_KIND_SERVER")
	s2call := find("service1", "service2-request", "")
	client := find("service1", "", "SPAN_KIND_CLIENT")
	remote := find("service2", "GET /users/{id}", "SPAN_KIND_SERVER")
	db := find("service2", "service2-db", "")
	var stmt otlptest.Span
	for _, s := range spans {
		if s.ParentSpanID == db.SpanID && s.Attrs["db.query.text"] != "" {
			stmt = s
		}
	}
	if stmt.SpanID == "" {
		t.Fatalf("no statement span under service2-db: %+v", spans)
	}
	for child, parent := range map[*otlptest.Span]*otlptest.Span{&s2call: &root, &client: &s2call, &remote: &client, &db: &remote, &stmt: &db} {
		if child.ParentSpanID != parent.SpanID {
			t.Errorf("%s/%s: parent %s, want %s/%s", child.Service, child.Name, child.ParentSpanID, parent.Service, parent.Name)
		}
	}
	if root.ParentSpanID != "" {
		t.Errorf("root has a parent: %s", root.ParentSpanID)
	}
	for _, s := range spans {
		if s.ParentSpanID != "" {
			if _, ok := ids[s.ParentSpanID]; !ok {
				t.Errorf("%s/%s: parent %s not in the trace", s.Service, s.Name, s.ParentSpanID)
			}
		}
	}
	for _, s := range []otlptest.Span{root, remote} {
		if s.Attrs["request_id"] != "e2e-trace-1" || s.Attrs["http.route"] != "/users/{id}" {
			t.Errorf("%s server span attributes %v", s.Service, s.Attrs)
		}
	}
	if stmt.Attrs["db.system.name"] != "mysql" || root.Resource["service.version"] != version {
		t.Errorf("statement %v, resource %v", stmt.Attrs, root.Resource)
	}

	// Jaeger knows both services, and finds the trace by its request ID,
	// as walkthrough 3 searches for it.
	if got := jaegerGet(t, st.Jaeger.URL()+"/api/services"); !strings.Contains(got, `"service1"`) || !strings.Contains(got, `"service2"`) {
		t.Errorf("/api/services: %s", got)
	}
	if got := jaegerGet(t, st.Jaeger.URL()+`/api/traces?service=service1&tags={"request_id":"e2e-trace-1"}&lookback=1h`); !strings.Contains(got, tid) {
		t.Errorf("search by request_id did not find trace %s: %.300s", tid, got)
	}

	// A panic is an error span with the exception.
	resp = call(t, "GET", st.Service1.URL()+"/honeypot", "", nil)
	hp := waitJaegerTrace(t, st.Jaeger.URL(), traceOf(t, resp), 1, 30*time.Second)[0]
	if hp.Name != "GET /honeypot" || !hp.StatusError || len(hp.Events) == 0 || hp.Events[0] != "exception" {
		t.Errorf("honeypot span %+v", hp)
	}
}

// TestCollectorKilledMidRun: requests keep succeeding when the collector
// dies, and SIGTERM still stops each service within 10 s.
func TestCollectorKilledMidRun(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN", "JAEGER_BIN"),
		Env: map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"}}})
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	stop := time.Now().Add(4 * time.Second)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				resp, err := http.Get(st.Service1.URL() + "/users/1")
				code := -1
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				statuses[code]++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)
	if err := st.Collector.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("statuses with the collector killed after 1 s of 4: %v", statuses)
	if len(statuses) != 1 || statuses[200] < 50 {
		t.Fatalf("requests failed once the collector died: %v", statuses)
	}
	for _, p := range []*devstack.Process{st.Service1, st.Service2} {
		start := time.Now()
		if err := p.Stop(10 * time.Second); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		t.Logf("%s exited 0 in %s with the collector dead", p.Name, time.Since(start).Round(time.Millisecond))
	}
}
