//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/lokidoor"
	"github.com/failready/failready/devstack/lokidoor/lokitest"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/requestid"
)

// TestLogsThroughTheCollector: the services log to stdout; the stack keeps
// their output as Docker's json-file driver does; the real collector reads
// those files with the project's config and sends the records, as to Loki,
// to a receiver at Loki's door. Every line with a request ID arrives exactly
// once, with its service as the resource, its level as the severity, its
// message as the body, its trace context, and the client address reduced to
// its network.
func TestLogsThroughTheCollector(t *testing.T) {
	rcv := lokitest.ListenLogs(t)
	containers := t.TempDir()
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN"), ContainerLogs: containers,
		Collector: devstack.CollectorOptions{LogsExportEndpoint: "http://" + rcv.Addr() + "/otlp"}})

	// Requests whose lines must arrive, a successful probe whose line must
	// not (the pipeline drops it), and a failed probe (a WARN) that must.
	reqs := []struct {
		id, method, path string
		status           int
	}{
		{"e2e-logs-ok", "GET", "/users/1", 200},
		{"e2e-logs-404", "GET", "/users/424242", 404},
		{"e2e-logs-panic", "GET", "/honeypot", 500},
		{"e2e-logs-probe", "GET", "/readyz", 200},
		{"e2e-logs-probe-405", "POST", "/healthz", 405},
	}
	const dropped = "e2e-logs-probe"
	ids := map[string]bool{}
	for _, q := range reqs {
		ids[q.id] = q.id != dropped
		if r := call(t, q.method, st.Service1.URL()+q.path, "", map[string]string{requestid.Header: q.id}); r.status != q.status {
			t.Fatalf("%s: %d, want %d", q.id, r.status, q.status)
		}
	}
	// The lines each service wrote with those IDs (read again after the
	// records arrive: a service may write its line after its answer).
	lines := func() map[string][]logtest.Line {
		want := map[string][]logtest.Line{}
		for _, p := range []*devstack.Process{st.Service1, st.Service2} {
			for _, l := range logtest.Parse(t, p.Output()) {
				if id, _ := l["request_id"].(string); ids[id] {
					want[p.Name] = append(want[p.Name], l)
				}
			}
		}
		return want
	}
	got := func() []lokitest.Record {
		var out []lokitest.Record
		for _, r := range rcv.Records() {
			if _, ok := ids[r.Attrs["request_id"]]; ok {
				out = append(out, r)
			}
		}
		return out
	}
	// The four kept requests are in service1's access log, and the panic
	// too: len(ids) records at least.
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool { return len(got()) >= len(ids) }); !ok {
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
			var match []lokitest.Record
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
			if r.SeverityText != l["level"] || r.TraceID != l.Str("trace_id") || r.SpanID != l.Str("span_id") ||
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
	levels := map[string]int{}
	for _, l := range append(want["service1"], want["service2"]...) {
		levels[l.Str("level")]++
	}
	if levels["WARN"] < 2 || levels["ERROR"] < 2 {
		t.Errorf("levels of the lines that arrived: %v; want the 404's and the failed probe's WARN, the panic's ERRORs", levels)
	}
	// As Loki stores them (deploy/loki/config.yaml's mapping): two index
	// labels, the rest structured metadata; every name the Logs dashboard,
	// the derived field and Jaeger's trace-to-logs query read is there, and
	// one request's lines come from both services.
	lokiNamesUsed(t, records)
	across := map[string]bool{}
	for _, r := range records {
		if r.Attrs["request_id"] == "e2e-logs-ok" {
			across[r.Resource["service.name"]] = true
		}
	}
	if !across["service1"] || !across["service2"] {
		t.Errorf("request_id e2e-logs-ok has lines of %v, want both services", across)
	}
	// The successful probe was logged by the service, and stopped in the
	// pipeline.
	probe := 0
	for _, l := range logtest.Parse(t, st.Service1.Output()) {
		if l.Str("request_id") == dropped && l.Str("route") == "/readyz" {
			probe++
		}
	}
	if probe != 1 {
		t.Errorf("service1 wrote %d lines for its successful probe, want 1", probe)
	}

	// A Go runtime crash, as Docker keeps it: a plain-text stack on stderr,
	// a line an entry, between two JSON lines, each entry naming its compose
	// service in attrs (compose's logging labels). It arrives as one record,
	// under its service. So does a real goroutine dump (SIGQUIT), the other
	// shape a Go crash takes.
	crash := []string{"panic: e2e crash", "", "goroutine 1 [running]:", "main.main()", "\t/src/main.go:3 +0x1d", "exit status 2"}
	dump := sigquitDump(t)
	var b strings.Builder
	entry := func(stream, line string) {
		e, _ := json.Marshal(map[string]any{"log": line + "\n", "stream": stream, "time": time.Now().UTC().Format(time.RFC3339Nano),
			"attrs": map[string]string{devstack.ServiceAttr: "crasher"}})
		b.Write(append(e, '\n'))
	}
	entry("stdout", `{"time":"2026-11-29T10:00:00Z","level":"INFO","msg":"before the crash","service":"crasher","request_id":"e2e-crash"}`)
	for _, l := range crash {
		entry("stderr", l)
	}
	entry("stdout", `{"time":"2026-11-29T10:00:01Z","level":"INFO","msg":"after the restart","service":"crasher","request_id":"e2e-crash"}`)
	for _, l := range dump {
		entry("stderr", l)
	}
	entry("stdout", `{"time":"2026-11-29T10:00:01Z","level":"INFO","msg":"after the dump","service":"crasher","request_id":"e2e-crash"}`)
	// Other programs' lines (the collector's own JSON, Prometheus's
	// logfmt) go through as they are, one record each.
	others := []string{`{"level":"info","ts":"2026-11-29T10:00:01Z","msg":"e2e other json"}`, `time=2026-11-29T10:00:01Z level=INFO msg="e2e other logfmt"`}
	for _, l := range others {
		entry("stderr", l)
	}
	// And a line over 16 KiB, as Docker keeps it: split into entries of
	// which only the last ends with a newline. It arrives as one record.
	long := strings.Repeat("x", 20000)
	line := `{"time":"2026-11-29T10:00:02Z","level":"INFO","msg":"` + long + `","service":"crasher","request_id":"e2e-long"}`
	for _, part := range []string{line[:16<<10], line[16<<10:] + "\n"} {
		e, _ := json.Marshal(map[string]string{"log": part, "stream": "stdout", "time": time.Now().UTC().Format(time.RFC3339Nano)})
		b.Write(append(e, '\n'))
	}
	if err := os.MkdirAll(filepath.Join(containers, "crasher"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(containers, "crasher", "crasher-json.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stack []lokitest.Record
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
		if strings.Contains(r.Body, "SIGQUIT") {
			continue // the dump, checked below
		}
		if strings.Contains(r.Body, "goroutine 1 [running]") || strings.Contains(r.Body, "main.main()") || strings.HasPrefix(r.Body, "panic: e2e crash") {
			bodies = append(bodies, r.Body)
		}
	}
	if len(bodies) != 1 || bodies[0] != strings.Join(crash, "\n")+"\n" {
		t.Errorf("the crash in %d records: %q", len(bodies), bodies)
	}
	if len(stack) == 1 && stack[0].Resource["service.name"] != "crasher" {
		t.Errorf("the crash record's resource %v, want service.name crasher (Docker's attrs)", stack[0].Resource)
	}
	var dumps []lokitest.Record
	for _, r := range rcv.Records() {
		if strings.Contains(r.Body, "SIGQUIT: quit") || strings.Contains(r.Body, "PC=0x") || strings.HasPrefix(r.Body, "rip ") {
			dumps = append(dumps, r)
		}
	}
	if len(dumps) != 1 || dumps[0].Body != strings.Join(dump, "\n")+"\n" || dumps[0].Resource["service.name"] != "crasher" {
		for _, d := range dumps {
			t.Logf("record under %v: %.200q", d.Resource, d.Body)
		}
		t.Errorf("the SIGQUIT dump (%d lines) in %d records; want one, whole, under service.name crasher", len(dump), len(dumps))
	}
	for _, o := range others {
		n := 0
		for _, r := range rcv.Records() {
			if r.Body == o+"\n" { // as Docker kept it
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q in %d records, want 1", o, n)
		}
	}
	if out := st.Collector.Output(); strings.Contains(out, "Failed to process") {
		t.Errorf("the collector failed on a line:\n%s", out)
	}
	var longs []string
	for _, r := range rcv.Records() {
		if r.Attrs["request_id"] == "e2e-long" {
			longs = append(longs, r.Body)
		}
	}
	if len(longs) != 1 || longs[0] != long {
		t.Errorf("the 20 000-byte line in %d records (bodies of %d bytes)", len(longs), len(strings.Join(longs, "")))
	}
}

// TestLogsSurviveACollectorKill: the collector killed with SIGKILL in the
// middle of the services' logging, then restarted (as compose's restart
// policy does; here the stack's supervisor). From its offsets and its queue
// in file_storage it goes on where it was, and no line is lost. Delivery is
// at least once: what was in flight at the kill (lines read since the
// offsets were last saved, or sent to Loki but not yet marked done in the
// queue) is sent again, as the same record (same time and body, so Loki
// drops an exact repeat, and a reader can tell one). So: every line
// arrives; none of the lines delivered well before the kill comes twice (a
// collector that lost its offsets would send them all again); a line comes
// twice only if it was written before the kill, and each copy is the same.
func TestLogsSurviveACollectorKill(t *testing.T) {
	rcv := lokitest.ListenLogs(t)
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN"), ContainerLogs: t.TempDir(),
		Collector: devstack.CollectorOptions{LogsExportEndpoint: "http://" + rcv.Addr() + "/otlp"},
		Env:       map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"}}})
	supervise(t, st)

	// Every access line of a run of requests, by service and request ID.
	lines := func(prefix string) map[string][]lokitest.Record {
		c := map[string][]lokitest.Record{}
		for _, r := range rcv.Records() {
			if strings.HasPrefix(r.Attrs["request_id"], prefix) && r.Body == "http request" {
				k := r.Resource["service.name"] + " " + r.Attrs["request_id"]
				c[k] = append(c[k], r)
			}
		}
		return c
	}
	// n requests from 4 clients, each line with its own request ID; after
	// each request, done counts it.
	var done atomic.Int64
	serve := func(prefix string, n int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < n; i += 4 {
					call(t, "GET", st.Service1.URL()+"/users/1", "", map[string]string{requestid.Header: fmt.Sprintf("%s%03d", prefix, i)})
					done.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		return &wg
	}

	// First, lines that are delivered, and their offsets saved (the
	// receiver saves them at each poll, every 200 ms), well before the kill.
	const early = 100
	serve("e2e-early-", early).Wait()
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool { return len(lines("e2e-early-")) >= 2*early }); !ok {
		t.Fatalf("%d of %d access lines within 30 s", len(lines("e2e-early-")), 2*early)
	}
	time.Sleep(time.Second)

	// Then the kill, halfway through 400 requests.
	const n = 400
	done.Store(0)
	wg := serve("e2e-kill-", n)
	if _, ok := poll(30*time.Second, time.Millisecond, func() bool { return done.Load() >= n/2 }); !ok {
		t.Fatalf("%d of %d requests within 30 s", done.Load(), n)
	}
	if err := st.Collector.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	wg.Wait()

	if _, ok := poll(60*time.Second, 500*time.Millisecond, func() bool { return len(lines("e2e-kill-")) >= 2*n }); !ok {
		t.Fatalf("%d of %d access lines within 60 s of the kill", len(lines("e2e-kill-")), 2*n)
	}
	time.Sleep(3 * time.Second) // for any repeat still on its way
	for k, rs := range lines("e2e-early-") {
		if len(rs) > 1 {
			t.Errorf("%s, delivered before the kill, arrived %d times", k, len(rs))
		}
	}
	before, repeated := 0, 0
	for k, rs := range lines("e2e-kill-") {
		// A line's time is taken just before it is written; the margin is
		// for the signal, which the collector acts on a little after kill(2)
		// returns.
		written := rs[0].Time.Before(killed.Add(100 * time.Millisecond))
		if written {
			before++
		}
		if len(rs) == 1 {
			continue
		}
		repeated++
		if !written {
			t.Errorf("%s, written %v after the kill, arrived %d times", k, rs[0].Time.Sub(killed), len(rs))
		}
		for _, r := range rs[1:] {
			if !sameRecord(r, rs[0]) {
				t.Errorf("%s arrived twice, and not as the same record:\n%+v\n%+v", k, rs[0], r)
			}
		}
	}
	t.Logf("%d access lines arrived; %d of the %d written before the kill more than once (as the same record)", len(lines("e2e-kill-")), repeated, before)
}

// sameRecord: a and b are the same log record sent again: everything but
// the time the collector read it.
func sameRecord(a, b lokitest.Record) bool {
	return a.Time.Equal(b.Time) && a.Body == b.Body && a.SeverityNumber == b.SeverityNumber && a.SeverityText == b.SeverityText &&
		a.TraceID == b.TraceID && a.SpanID == b.SpanID && maps.Equal(a.Attrs, b.Attrs) && maps.Equal(a.Resource, b.Resource)
}

// TestLogsWaitForLoki: Loki's door closed for 10 s while the services
// serve and log. Their answers do not notice; the lines wait in the
// collector's queue and every one arrives, once, after the door reopens.
func TestLogsWaitForLoki(t *testing.T) {
	rcv := lokitest.ListenLogs(t)
	addr := rcv.Addr()
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN"), ContainerLogs: t.TempDir(),
		Collector: devstack.CollectorOptions{LogsExportEndpoint: "http://" + addr + "/otlp"}})

	// One request a 20 ms with its own ID, as long as more returns true;
	// the slowest answer.
	n := 0
	serve := func(more func() bool) (slowest time.Duration) {
		for ; more(); n++ {
			r := call(t, "GET", st.Service1.URL()+"/users/1", "", map[string]string{requestid.Header: fmt.Sprintf("e2e-loki-%04d", n)})
			if r.status != 200 {
				t.Fatalf("request %d: %d", n, r.status)
			}
			slowest = max(slowest, r.took)
			time.Sleep(20 * time.Millisecond)
		}
		return slowest
	}
	// Steady first: lines arrive.
	before := serve(func() bool { return n < 20 })
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool { return len(rcv.Records()) > 0 }); !ok {
		t.Fatal("no record within 30 s")
	}
	// The door closes; 10 s of requests.
	if err := rcv.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	during := serve(func() bool { return time.Since(closed) < 10*time.Second })
	reopened := lokitest.ListenLogsAt(t, addr)
	t.Logf("%d requests; slowest answer before: %v, while Loki was away: %v", n, before, during)
	if during > before+time.Second {
		t.Errorf("the slowest answer while Loki was away took %v (%v before)", during, before)
	}

	count := func() map[string]int {
		c := map[string]int{}
		for _, r := range append(rcv.Records(), reopened.Records()...) {
			if strings.HasPrefix(r.Attrs["request_id"], "e2e-loki-") && r.Body == "http request" {
				c[r.Resource["service.name"]+" "+r.Attrs["request_id"]]++
			}
		}
		return c
	}
	want := 2 * n // each request's access line in each service
	took, ok := poll(90*time.Second, 500*time.Millisecond, func() bool { return len(count()) >= want })
	if !ok {
		t.Fatalf("%d of %d access lines within 90 s of Loki's return", len(count()), want)
	}
	time.Sleep(3 * time.Second)
	for k, v := range count() {
		if v > 1 {
			t.Errorf("%s: %d records", k, v)
		}
	}
	t.Logf("all %d access lines arrived %v after Loki returned; %d records in %d requests before the outage, %d in %d after it",
		len(count()), took.Round(time.Second), len(rcv.Records()), rcv.Pushes(), len(reopened.Records()), reopened.Pushes())
}

// lokiNamesUsed: the records as Loki would store them carry exactly the
// index labels its config names, and every label or structured-metadata
// name that Grafana's queries read.
func lokiNamesUsed(t *testing.T, records []lokitest.Record) {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "loki", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	indexed, err := lokidoor.IndexLabels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range records {
		e := r.Loki(indexed)
		if len(e.Labels) != 2 || e.Labels["service_name"] == "" || e.Labels["deployment_environment_name"] != "native" {
			t.Errorf("stream labels %v, want service_name and deployment_environment_name only", e.Labels)
		}
		for k := range e.Labels {
			have[k] = true
		}
		for k := range e.Metadata {
			have[k] = true
		}
	}
	var queries []string
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "dashboards", "logs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Expr)
		}
	}
	ds, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "provisioning", "datasources", "datasources.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Datasources []struct {
			JSONData struct {
				DerivedFields []struct {
					MatcherRegex string `yaml:"matcherRegex"`
				} `yaml:"derivedFields"`
				TracesToLogs struct{ Query string } `yaml:"tracesToLogsV2"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(ds, &prov); err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, p := range prov.Datasources {
		if q := p.JSONData.TracesToLogs.Query; q != "" {
			queries = append(queries, q)
		}
		for _, f := range p.JSONData.DerivedFields {
			used = append(used, f.MatcherRegex)
		}
	}
	for _, q := range queries {
		used = append(used, lokidoor.LogQLNames(q)...)
	}
	for _, n := range used {
		if !have[n] {
			t.Errorf("Grafana reads %s, which Loki would not have (it has %v)", n, have)
		}
	}
	t.Logf("Loki would have %d names for these lines; Grafana reads %d of them", len(have), len(used))
}

// sigquitDump is what a Go program prints when it gets SIGQUIT: every
// goroutine's stack, the registers, then the exit status (as a shell or a
// supervisor prints it), line by line.
func sigquitDump(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"time\"\n\nfunc main() {\n\tgo time.Sleep(time.Hour)\n\tprintln(\"ready\")\n\ttime.Sleep(time.Hour)\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sleeper")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(dir, "main.go")).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stderr)
	if l, err := r.ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("the sleeper: %q %v", l, err)
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	out, _ := io.ReadAll(r)
	_ = cmd.Wait() // exit status 2, which the last line records
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "SIGQUIT: quit") || len(lines) < 10 {
		t.Fatalf("not a SIGQUIT dump: %q", out)
	}
	return append(lines, fmt.Sprintf("exit status %d", cmd.ProcessState.ExitCode()))
}
