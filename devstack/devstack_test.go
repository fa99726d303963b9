package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

const repoRoot = ".."

func TestServiceEnv(t *testing.T) {
	db := &Database{User: "u", Password: "p", Name: "n"}
	s2 := serviceEnv("service2", wiring{MySQLAddr: "127.0.0.1:3307", DB: db, StatsdAddr: "127.0.0.1:9125", OTLPEndpoint: "127.0.0.1:4317"},
		[]string{"LOG_LEVEL=debug"})
	want := []string{"LISTEN_ADDR=127.0.0.1:0", "DEPLOYMENT_ID=native", "MYSQL_ADDR=127.0.0.1:3307", "MYSQL_USER=u",
		"MYSQL_PASSWORD=p", "MYSQL_DATABASE=n", "NATS_URL=off", "STATSD_ADDR=127.0.0.1:9125",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317", "LOG_LEVEL=debug"}
	if !slices.Equal(s2, want) {
		t.Errorf("service2:\n got %q\nwant %q", s2, want)
	}
	// Without the pipeline: metrics to a dead port, tracing off; the edge
	// knows service2 and nothing of MySQL.
	s1 := serviceEnv("service1", wiring{ListenAddr: "127.0.0.1:8000", Service2URL: "http://127.0.0.1:8001"}, nil)
	want = []string{"LISTEN_ADDR=127.0.0.1:8000", "DEPLOYMENT_ID=native", "SERVICE2_URL=http://127.0.0.1:8001",
		"STATSD_ADDR=" + discardAddr, "OTEL_SDK_DISABLED=true"}
	if !slices.Equal(s1, want) {
		t.Errorf("service1:\n got %q\nwant %q", s1, want)
	}
}

func TestLoopbackCollectorConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, CollectorConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoopbackCollectorConfig(string(src), CollectorPorts{
		OTLPGRPC: "127.0.0.1:1", OTLPHTTP: "127.0.0.1:2", Health: "127.0.0.1:3", Metrics: 4})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "0.0.0.0") || strings.Contains(got, "port: 8888") {
		t.Errorf("a compose address is left:\n%s", got)
	}
	for _, want := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "port: 4"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
	if _, err := LoopbackCollectorConfig(strings.ReplaceAll(string(src), "0.0.0.0:4318", "0.0.0.0:9999"), CollectorPorts{}); err == nil ||
		!strings.Contains(err.Error(), "0.0.0.0:4318") {
		t.Errorf("a config without the OTLP HTTP listener: %v", err)
	}
}

func TestLoopbackPrometheusConfig(t *testing.T) {
	got, err := LoopbackPrometheusConfig(repoRoot, map[string]string{"statsd-exporter:9102": "127.0.0.1:19102"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`"127.0.0.1:19102"`)) || bytes.Contains(got, []byte(`"statsd-exporter:9102"`)) {
		t.Errorf("target not moved:\n%s", got)
	}
	if _, err := LoopbackPrometheusConfig(repoRoot, map[string]string{"nosuch:1": "x"}); err == nil {
		t.Error("a missing target was not reported")
	}
	// Alertmanager moved, or its section dropped (and only it) when there is none.
	moved, err := LoopbackPrometheusConfig(repoRoot, map[string]string{alertmanagerTarget: "127.0.0.1:19093"})
	if err != nil || !bytes.Contains(moved, []byte("alerting:")) || !bytes.Contains(moved, []byte(`"127.0.0.1:19093"`)) {
		t.Errorf("Alertmanager not moved (%v):\n%s", err, moved)
	}
	dropped, err := LoopbackPrometheusConfig(repoRoot, map[string]string{alertmanagerTarget: ""})
	if err != nil || bytes.Contains(dropped, []byte("alerting:")) || bytes.Contains(dropped, []byte("Alertmanager")) || bytes.Contains(dropped, []byte(alertmanagerTarget)) || !bytes.Contains(dropped, []byte("rule_files:")) ||
		!bytes.Contains(dropped, []byte("scrape_configs:")) {
		t.Errorf("alerting not dropped cleanly (%v):\n%s", err, dropped)
	}
}

func TestLoopbackAlertmanagerConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, AlertmanagerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoopbackAlertmanagerConfig(string(src), "127.0.0.1:19095")
	if err != nil || strings.Contains(got, "alertlog:9095") || strings.Count(got, "http://127.0.0.1:19095/alerts") != 2 {
		t.Errorf("webhooks not moved (%v):\n%s", err, got)
	}
	if _, err := LoopbackAlertmanagerConfig("route: {}", "x"); err == nil {
		t.Error("a config without alertlog's webhook was not reported")
	}
}

func TestListeningAddr(t *testing.T) {
	for line, want := range map[string]string{
		`{"msg":"listening","addr":"127.0.0.1:8000","service":"service1"}`: "127.0.0.1:8000",
		`{"msg":"debug listening","addr":"127.0.0.1:6060"}`:                "",
		`listening on 127.0.0.1:8000`:                                      "",
	} {
		if got := listeningAddr(line); got != want {
			t.Errorf("%s: %q, want %q", line, got, want)
		}
	}
}

func TestStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 150 and stime 50
	// ticks (fields 14 and 15).
	stat := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 8 0 12345 0 0"
	if d, err := statCPU(stat); err != nil || d != 2*time.Second {
		t.Fatalf("%s, %v; want 2s", d, err)
	}
	if _, err := statCPU("garbage"); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestProcMemory(t *testing.T) {
	ballast := make([]byte, 64<<20)
	for i := range ballast {
		ballast[i] = 1 // resident, not just reserved
	}
	rss, err := ProcMemory(os.Getpid(), "VmRSS")
	if err != nil || rss < 64<<20 {
		t.Errorf("VmRSS = %d, %v; want at least the 64 MiB just touched", rss, err)
	}
	peak, err := ProcMemory(os.Getpid(), "VmHWM")
	if err != nil || peak < rss {
		t.Errorf("VmHWM = %d, %v; want at least VmRSS %d", peak, err, rss)
	}
	_ = ballast[len(ballast)-1]
	if _, err := ProcMemory(os.Getpid(), "VmNothing"); err == nil {
		t.Error("an unknown field gave no error")
	}
}

func TestAddrOrFree(t *testing.T) {
	if a, err := addrOrFree("127.0.0.1:9090"); err != nil || a != "127.0.0.1:9090" {
		t.Errorf("a given address: %q, %v", a, err)
	}
	for _, in := range []string{"", "127.0.0.1:0"} {
		a, err := addrOrFree(in)
		if err != nil || !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
			t.Errorf("%q gave %q, %v; want a free loopback port", in, a, err)
		}
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := prefixWriter(&b, "db| ")
	_, _ = w.Write([]byte("one\ntwo\n"))
	if b.String() != "db| one\ndb| two\n" {
		t.Fatalf("%q", b.String())
	}
}

func TestWaitReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := WaitReady(context.Background(), srv.URL, 10*time.Second); err != nil || calls.Load() != 3 {
		t.Fatalf("%v after %d calls", err, calls.Load())
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer down.Close()
	if err := WaitReady(context.Background(), down.URL, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("never ready: %v", err)
	}
}

// shell starts a /bin/sh script as a stack process.
func shell(t *testing.T, script string) (*Process, error) {
	t.Helper()
	var log bytes.Buffer
	return StartProcess(context.Background(), "sh", "/bin/sh", nil, Output{Log: &lockedWriter{w: &log}}, "-c", script)
}

// Supervision, with a shell standing in for a service: the address from its
// "listening" line, its output kept, SIGTERM and the exit code judged.
func TestProcessLifecycle(t *testing.T) {
	p, err := shell(t, `trap 'echo stopping; exit 0' TERM; echo '{"msg":"listening","addr":"127.0.0.1:1234"}'; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "127.0.0.1:1234" || p.URL() != "http://127.0.0.1:1234" {
		t.Fatalf("addr %q", p.Addr)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if lines := p.Lines(); len(lines) != 2 || lines[1] != "stopping" {
		t.Fatalf("lines %q", lines)
	}

	p, err = shell(t, `trap 'exit 3' TERM; echo '{"msg":"listening","addr":"x:1"}'; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err == nil || !strings.Contains(err.Error(), "exited 3") {
		t.Fatalf("a bad exit was not reported: %v", err)
	}

	if _, err := shell(t, `echo 'config error: LISTEN_ADDR'; exit 1`); err == nil || !strings.Contains(err.Error(), "config error: LISTEN_ADDR") {
		t.Fatalf("a process that died at start: %v", err)
	}
}

func TestBuildStampsTheVersion(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"go.mod":        "module example.com/m\n\ngo 1.22\n",
		"hello/main.go": "package main\n\nvar version = \"dev\"\n\nfunc main() { println(version) }\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bins, err := Build(context.Background(), dir, filepath.Join(dir, "bin"), "abc123", "hello")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bins["hello"]).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "abc123" {
		t.Fatalf("%q %v", out, err)
	}
}

// A proxy follows its upstream when a service comes back on a new port.
func TestChaosRouteFollowsARestartedService(t *testing.T) {
	c, err := startChaos(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	answer := func(body string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
	}
	get := func() string {
		resp, err := http.Get("http://" + c.Service2.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	first, second := answer("first"), answer("second")
	defer first.Close()
	defer second.Close()
	if err := c.route("service2", &c.Service2, first.Listener.Addr().String()); err != nil || get() != "first" {
		t.Fatalf("first route: %v", err)
	}
	listen := c.Service2.Listen
	if err := c.route("service2", &c.Service2, second.Listener.Addr().String()); err != nil || get() != "second" {
		t.Fatalf("after the restart: %v", err)
	}
	if c.Service2.Listen != listen {
		t.Fatalf("the proxy moved from %s to %s; callers know the old address", listen, c.Service2.Listen)
	}
}

// TestSuperviseRestartsWithBackoff: a program of the stack killed with
// SIGKILL is reported at once and started again with the same command;
// killed again soon after, it waits twice as long.
func TestSuperviseRestartsWithBackoff(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ready.Close()
	addr := strings.TrimPrefix(ready.URL, "http://")
	var log bytes.Buffer
	p, err := StartTool(context.Background(), "statsd-exporter", "/bin/sh", []string{"-c", "exec sleep 60"}, addr, "/", Output{Log: &lockedWriter{w: &log}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{StatsdExporter: p}
	events := make(chan Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Supervise(ctx, func(e Event) { events <- e }); close(done) }()
	next := func() Event {
		t.Helper()
		select {
		case e := <-events:
			t.Logf("%s: %s", e.Name, e.Msg)
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no supervisor event within 10 s")
			return Event{}
		}
	}
	for i, wait := range []time.Duration{MinBackoff, 2 * MinBackoff} {
		old := s.Programs()["statsd-exporter"]
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if e := next(); e.Name != "statsd-exporter" || !strings.Contains(e.Msg, "signal: killed") ||
			!strings.Contains(e.Msg, "restarting in "+wait.String()) {
			t.Fatalf("kill %d: %+v", i, e)
		}
		e := next()
		if took := time.Since(killed); e.Pid == 0 || e.Pid == old || took < wait {
			t.Fatalf("kill %d: restarted %+v after %s, want a new pid after %s", i, e, took, wait)
		}
		if got := s.Programs()["statsd-exporter"]; got != e.Pid {
			t.Fatalf("Programs() has pid %d, the restart reported %d", got, e.Pid)
		}
	}
	cancel()
	<-done
	if err := s.StatsdExporter.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StatsdExporter.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestLoopbackJaegerConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, JaegerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoopbackJaegerConfig(string(src), JaegerPorts{OTLPGRPC: "127.0.0.1:1", QueryHTTP: "127.0.0.1:2", QueryGRPC: "127.0.0.1:3", Health: "127.0.0.1:4"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "0.0.0.0") {
		t.Errorf("a compose address is left:\n%s", got)
	}
	for _, want := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "max_traces:"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
	if _, err := LoopbackJaegerConfig(strings.ReplaceAll(string(src), "0.0.0.0:16686", "0.0.0.0:1"), JaegerPorts{}); err == nil ||
		!strings.Contains(err.Error(), "0.0.0.0:16686") {
		t.Errorf("a config without the query listener: %v", err)
	}
}

// TestContainerLogs: a process's stdout and stderr land in
// NAME/NAME-json.log as Docker's json-file driver writes them: one entry a
// line, its stream, an RFC 3339 time, and a line over 16 KiB split into
// entries that only the last ends with "\n", never inside a character;
// every entry names its program in attrs, as compose's logging labels do.
func TestContainerLogs(t *testing.T) {
	dir := t.TempDir()
	long := "x" + strings.Repeat("é", 10000) // 20 001 bytes: two entries, the cut not on an even byte
	var log bytes.Buffer
	p, err := StartProcess(context.Background(), "svc", "/bin/sh", []string{"LONG=" + long}, Output{Log: &lockedWriter{w: &log}, ContainerLogs: dir},
		"-c", `echo '{"msg":"listening","addr":"127.0.0.1:1"}'; echo 'to stderr' >&2; printf '%s\n' "$LONG"; exit 0`)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit %d %v", code, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "svc", "svc-json.log"))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Log, Stream, Time string
		Attrs             map[string]string
	}
	var stdout, stderr []entry
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not a json-file entry: %.100q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("time %q: %v", e.Time, err)
		}
		if e.Attrs[ServiceAttr] != "svc" || len(e.Attrs) != 1 {
			t.Errorf("attrs %v, want %s=svc", e.Attrs, ServiceAttr)
		}
		if len(e.Log) > maxEntry+1 || !utf8.ValidString(e.Log) {
			t.Errorf("an entry of %d bytes, valid UTF-8 %v", len(e.Log), utf8.ValidString(e.Log))
		}
		if e.Stream == "stderr" {
			stderr = append(stderr, e)
		} else {
			stdout = append(stdout, e)
		}
	}
	if len(stderr) != 1 || stderr[0].Log != "to stderr\n" || stderr[0].Stream != "stderr" {
		t.Errorf("stderr entries %+v", stderr)
	}
	if len(stdout) != 3 || stdout[0].Log != `{"msg":"listening","addr":"127.0.0.1:1"}`+"\n" || stdout[0].Stream != "stdout" {
		t.Fatalf("%d stdout entries, the first %.80q", len(stdout), stdout[0].Log)
	}
	if strings.HasSuffix(stdout[1].Log, "\n") || stdout[1].Log+stdout[2].Log != long+"\n" {
		t.Errorf("the long line in %d + %d bytes, the first ending %q", len(stdout[1].Log), len(stdout[2].Log), stdout[1].Log[len(stdout[1].Log)-2:])
	}
}
