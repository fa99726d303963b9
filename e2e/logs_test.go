//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/failready/failready/internal/devstack"
	"github.com/failready/failready/internal/logtest"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// TestLogsThroughTheCollector: the services log to stdout; the stack keeps
// their output as Docker's json-file driver does; the real collector reads
// those files with the project's config and sends the records, as to Loki,
// to a receiver at Loki's door. Every line with a request ID arrives exactly
// once, with its service as the resource, its level as the severity, its
// message as the body, its trace context, and the client address reduced to
// its network.
func TestLogsThroughTheCollector(t *testing.T) {
	rcv := otlptest.ListenLogs(t)
	containers := t.TempDir()
	st, _ := startStackWith(t, devstack.Options{OtelcolBin: toolBin(t, "OTELCOL_BIN"), ContainerLogs: containers,
		LogsExportEndpoint: "http://" + rcv.Addr() + "/otlp"})

	ids := map[string]int{"e2e-logs-ok": 200, "e2e-logs-404": 404, "e2e-logs-panic": 500}
	paths := map[string]string{"e2e-logs-ok": "/users/1", "e2e-logs-404": "/users/424242", "e2e-logs-panic": "/honeypot"}
	for id, want := range ids {
		if r := call(t, "GET", st.Service1.URL()+paths[id], "", map[string]string{requestid.Header: id}); r.status != want {
			t.Fatalf("%s: %d, want %d", id, r.status, want)
		}
	}
	// The lines each service wrote with those IDs (read again after the
	// records arrive: a service may write its line after its answer).
	lines := func() map[string][]logtest.Line {
		want := map[string][]logtest.Line{}
		for _, p := range []*devstack.Process{st.Service1, st.Service2} {
			for _, l := range logtest.Parse(t, p.Output()) {
				if id, _ := l["request_id"].(string); ids[id] != 0 {
					want[p.Name] = append(want[p.Name], l)
				}
			}
		}
		return want
	}
	got := func() []otlptest.Record {
		var out []otlptest.Record
		for _, r := range rcv.Records() {
			if ids[r.Attrs["request_id"]] != 0 {
				out = append(out, r)
			}
		}
		return out
	}
	// Each request is in service1's access log, and the panic too.
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool { return len(got()) >= len(ids)+1 }); !ok {
		t.Fatalf("%d records within 30 s: %+v", len(got()), got())
	}
	time.Sleep(3 * time.Second) // the rest, and duplicates, would come now
	want := lines()
	total := len(want["service1"]) + len(want["service2"])
	records := got()
	if len(records) != total {
		t.Fatalf("%d records for %d lines", len(records), total)
	}
	for svc, lines := range want {
		for _, l := range lines {
			var match []otlptest.Record
			for _, r := range records {
				if r.Resource["service.name"] == svc && r.Body == l["msg"] && r.Attrs["request_id"] == l["request_id"] &&
					r.Time.Format(time.RFC3339Nano) == l["time"] {
					match = append(match, r)
				}
			}
			if len(match) != 1 {
				t.Errorf("%s %q (%v): %d records, want 1", svc, l["msg"], l["request_id"], len(match))
				continue
			}
			r := match[0]
			if r.SeverityText != l["level"] || r.TraceID != l["trace_id"] || r.SpanID != l["span_id"] ||
				r.Resource["service.version"] != version || r.Resource["deployment.environment.name"] != "native" {
				t.Errorf("%s %q: record %+v, line %v", svc, l["msg"], r, l)
			}
			if ra, ok := l["remote_addr"].(string); ok && (r.Attrs["remote_addr"] != "127.0.0.0/24" || strings.HasPrefix(ra, "127.0.0.0")) {
				t.Errorf("%s %q: remote_addr %q from %q, want 127.0.0.0/24", svc, l["msg"], r.Attrs["remote_addr"], ra)
			}
			for _, k := range []string{"time", "level", "msg", "service"} {
				if _, ok := r.Attrs[k]; ok {
					t.Errorf("%s %q: %s left in the attributes", svc, l["msg"], k)
				}
			}
		}
	}
	t.Logf("%d lines of service1 and %d of service2 arrived once each", len(want["service1"]), len(want["service2"]))

	// A Go runtime crash, as Docker keeps it: a plain-text stack on stderr,
	// a line an entry, between two JSON lines. It arrives as one record.
	crash := []string{"panic: e2e crash", "", "goroutine 1 [running]:", "main.main()", "\t/src/main.go:3 +0x1d", "exit status 2"}
	var b strings.Builder
	entry := func(stream, line string) {
		e, _ := json.Marshal(map[string]string{"log": line + "\n", "stream": stream, "time": time.Now().UTC().Format(time.RFC3339Nano)})
		b.Write(append(e, '\n'))
	}
	entry("stdout", `{"time":"2026-11-29T10:00:00Z","level":"INFO","msg":"before the crash","service":"crasher","request_id":"e2e-crash"}`)
	for _, l := range crash {
		entry("stderr", l)
	}
	entry("stdout", `{"time":"2026-11-29T10:00:01Z","level":"INFO","msg":"after the restart","service":"crasher","request_id":"e2e-crash"}`)
	if err := os.MkdirAll(filepath.Join(containers, "crasher"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(containers, "crasher", "crasher-json.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stack []otlptest.Record
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool {
		stack = nil
		for _, r := range rcv.Records() {
			if strings.HasPrefix(r.Body, "panic: e2e crash") {
				stack = append(stack, r)
			}
		}
		return len(stack) > 0
	}); !ok {
		t.Fatal("no crash record within 30 s")
	}
	time.Sleep(2 * time.Second)
	var bodies []string
	for _, r := range rcv.Records() {
		if strings.Contains(r.Body, "goroutine 1 [running]") || strings.Contains(r.Body, "main.main()") || strings.HasPrefix(r.Body, "panic: e2e crash") {
			bodies = append(bodies, r.Body)
		}
	}
	if len(bodies) != 1 || bodies[0] != strings.Join(crash, "\n")+"\n" {
		t.Errorf("the crash in %d records: %q", len(bodies), bodies)
	}
}

// TestLogsSurviveACollectorKill: the collector killed with SIGKILL while
// the services log, then restarted (as compose's restart policy does, here
// by the stack's supervisor): from its offsets in file_storage it goes on
// where it was, and no line is lost or sent twice.
func TestLogsSurviveACollectorKill(t *testing.T) {
	rcv := otlptest.ListenLogs(t)
	st, _ := startStackWith(t, devstack.Options{OtelcolBin: toolBin(t, "OTELCOL_BIN"), ContainerLogs: t.TempDir(),
		LogsExportEndpoint: "http://" + rcv.Addr() + "/otlp",
		Env:                map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"}}})
	ctx, cancel := context.WithCancel(context.Background())
	supervised := make(chan struct{})
	go func() {
		st.Supervise(ctx, func(e devstack.Event) { t.Logf("%s %s", e.Name, e.Msg) })
		close(supervised)
	}()
	defer func() { cancel(); <-supervised }()

	const n = 400
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				call(t, "GET", st.Service1.URL()+"/users/1", "", map[string]string{requestid.Header: fmt.Sprintf("e2e-kill-%03d", i)})
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := st.Collector.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Every request's access lines, one in each service.
	count := func() map[string]int {
		c := map[string]int{}
		for _, r := range rcv.Records() {
			if strings.HasPrefix(r.Attrs["request_id"], "e2e-kill-") && r.Body == "http request" {
				c[r.Resource["service.name"]+" "+r.Attrs["request_id"]]++
			}
		}
		return c
	}
	if _, ok := poll(60*time.Second, 500*time.Millisecond, func() bool { return len(count()) >= 2*n }); !ok {
		t.Fatalf("%d of %d access lines within 60 s of the kill", len(count()), 2*n)
	}
	time.Sleep(3 * time.Second)
	dup := 0
	for k, v := range count() {
		if v > 1 {
			dup++
			if dup <= 5 {
				t.Errorf("%s: %d records", k, v)
			}
		}
	}
	t.Logf("%d access lines arrived, %d more than once", len(count()), dup)
}
