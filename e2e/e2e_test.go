//go:build e2e

// Package e2e runs the real binaries through the native stack runner
// (devstack): a private mariadbd prepared with deploy/mysql/init,
// service2 and service1 as host processes on loopback.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/requestid"
)

const repoRoot = ".."

// version is stamped into the binaries, and must come back in every line.
var version = fmt.Sprintf("e2e-%d", time.Now().Unix())

// bins are built once for every test.
var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "failready-e2e-bin-")
	if err != nil {
		panic(err)
	}
	bins, err = devstack.Build(context.Background(), repoRoot, dir, version, "service1", "service2", "worker", "cmd/loadgen", "cmd/alertlog")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every stack stopped: no reader, proxy or receiver goroutine left.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startStack starts MySQL and both services; it is stopped at the end of
// the test, and its log is printed when the test failed.
func startStack(t *testing.T) (*devstack.Stack, string) {
	return startStackWith(t, devstack.Options{})
}

// startStackWith starts the stack with extra options (bins, env, the
// metrics pipeline) on top of the common ones.
func startStackWith(t *testing.T, o devstack.Options) (*devstack.Stack, string) {
	t.Helper()
	if !devstack.MariaDBAvailable() && os.Getenv("MYSQL_TEST_DSN") == "" {
		devstacktest.Missing(t, "neither mariadbd nor MYSQL_TEST_DSN")
	}
	logPath := filepath.Join(t.TempDir(), "stack.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.RepoRoot, o.Log, o.Version, o.Bins = repoRoot, logf, version, bins
	o.MySQL.DSN = os.Getenv("MYSQL_TEST_DSN")
	st, err := devstack.Start(ctx, o)
	if err != nil {
		logf.Close()
		dumpLog(t, logPath)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stack stop: %v", err)
		}
		logf.Close()
		if t.Failed() {
			dumpLog(t, logPath)
		}
	})
	return st, logPath
}

// supervise restarts the stack's programs that die (as make local does)
// until the test ends, and logs what it did. It stops before the stack
// does: cleanups run last registered first.
func supervise(t *testing.T, st *devstack.Stack) {
	ctx, cancel := context.WithCancel(context.Background())
	supervised := make(chan struct{})
	go func() {
		st.Supervise(ctx, func(e devstack.Event) { t.Logf("%s %s", e.Name, e.Msg) })
		close(supervised)
	}()
	t.Cleanup(func() { cancel(); <-supervised })
}

func dumpLog(t *testing.T, path string) {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	t.Logf("last lines of the stack log:\n%s", strings.Join(lines, "\n"))
}

// reply is what a request got back.
type reply struct {
	status int
	id     string // X-Request-ID
	body   string
	header http.Header
	took   time.Duration
}

// send makes one request: the e2e tests' one way of calling the stack.
func send(method, url, body string, hdr map[string]string) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get(requestid.Header), string(b), resp.Header, time.Since(start)}, err
}

// call is send for a request that must get an answer.
func call(t *testing.T, method, url, body string, hdr map[string]string) reply {
	t.Helper()
	r, err := send(method, url, body, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// poll calls cond every interval until it holds or limit has passed, and
// returns how long it took and whether it held: the e2e tests' one way of
// waiting.
func poll(limit, interval time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}

// waitStatus polls url until it answers want, for at most limit.
func waitStatus(t *testing.T, url string, want int, limit time.Duration) time.Duration {
	t.Helper()
	took, ok := poll(limit, 20*time.Millisecond, func() bool {
		r, err := send(http.MethodGet, url, "", nil)
		return err == nil && r.status == want
	})
	if !ok {
		t.Fatalf("%s did not answer %d within %s", url, want, limit)
	}
	return took
}

func TestRequestIDsCorrelateBothServices(t *testing.T) {
	st, _ := startStack(t)
	base := st.Service1.URL()

	type req struct {
		method, path, body, sentID string
		status                     int
		hops                       bool // reaches service2
	}
	reqs := []req{
		{"GET", "/", "", "", 200, true},
		{"GET", "/", "", "e2e-given-1", 200, true},
		{"GET", "/users/1", "", "e2e-given-2", 200, true},
		{"POST", "/users", `{"first_name":"e2e","last_name":"user"}`, "", 201, true},
		{"GET", "/users/987654", "", "", 404, true},
		{"POST", "/users", `{"first_name":""}`, "e2e-invalid", 422, false},
		{"GET", "/nope", "", "", 404, false},
		{"DELETE", "/", "", "", 405, false},
		{"GET", "/honeypot", "", "e2e-panic", 500, false},
		{"GET", "/", "", strings.Repeat("z", 200), 200, true},
		{"GET", "/", "", "inject\"},{\"x\":\"", 200, true},
	}
	var got []reply
	for _, r := range reqs {
		hdr := map[string]string{}
		if r.sentID != "" {
			hdr[requestid.Header] = r.sentID
		}
		rep := call(t, r.method, base+r.path, r.body, hdr)
		if rep.status != r.status {
			t.Errorf("%s %s: %d %s, want %d", r.method, r.path, rep.status, rep.body, r.status)
		}
		if rep.id == "" {
			t.Errorf("%s %s: no X-Request-ID in the response", r.method, r.path)
		}
		if requestid.Valid(r.sentID) && rep.id != r.sentID {
			t.Errorf("%s %s: sent %q, got %q back", r.method, r.path, r.sentID, rep.id)
		}
		if r.sentID != "" && !requestid.Valid(r.sentID) && rep.id == r.sentID {
			t.Errorf("hostile id echoed")
		}
		if rep.status >= 400 && !strings.Contains(rep.body, `"request_id":"`+rep.id+`"`) {
			t.Errorf("%s %s: error body lacks the request ID: %s", r.method, r.path, rep.body)
		}
		got = append(got, rep)
	}

	time.Sleep(300 * time.Millisecond) // let the last lines land
	s1, s2 := logtest.Parse(t, st.Service1.Output()), logtest.Parse(t, st.Service2.Output())
	for _, lines := range [][]logtest.Line{s1, s2} {
		for _, l := range lines {
			if l["version"] != version || l["deployment_id"] != "native" || l["service"] == nil || l["level"] == nil || l["time"] == nil {
				t.Errorf("line lacks the process fields: %v", l)
			}
		}
	}
	for i, r := range reqs {
		id := got[i].id
		in1, in2 := logtest.Find(s1, map[string]any{"request_id": id}), logtest.Find(s2, map[string]any{"request_id": id})
		if len(in1) == 0 {
			t.Errorf("%s %s (%s): no service1 line", r.method, r.path, id)
		}
		if r.hops && len(in2) == 0 {
			t.Errorf("%s %s (%s): no service2 line with the same ID", r.method, r.path, id)
		}
		if !r.hops && len(in2) != 0 {
			t.Errorf("%s %s (%s): reached service2", r.method, r.path, id)
		}
		for _, lines := range [][]logtest.Line{in1, in2} {
			access := 0
			for _, l := range lines {
				if l["msg"] == "http request" {
					access++
					if l["status"] != float64(r.status) && lines[0]["service"] == "service1" {
						t.Errorf("access line status %v, want %d", l["status"], r.status)
					}
				}
			}
			if len(lines) > 0 && access != 1 {
				t.Errorf("%s %s: %d access lines in one service, want 1", r.method, r.path, access)
			}
		}
	}
}

// TestSIGTERMDrainsAndExitsZero: SIGTERM while a request is in flight; the
// request completes, the process exits 0, and service2 closes its database
// only after its HTTP server has stopped.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	st, _ := startStack(t)
	// A burst of requests in flight while SIGTERM arrives at service1.
	results := make(chan int, 20)
	for range 20 {
		go func() {
			resp, err := http.Get(st.Service1.URL() + "/")
			if err != nil {
				results <- -1
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	time.Sleep(5 * time.Millisecond)
	for _, p := range []*devstack.Process{st.Service1, st.Service2} {
		start := time.Now()
		if err := p.Stop(15 * time.Second); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		t.Logf("%s exited 0 in %s", p.Name, time.Since(start).Round(time.Millisecond))
	}
	for range 20 {
		// A request either completed (200) or was never accepted (-1):
		// none was cut half way, which would show as a 5xx or a broken body.
		if s := <-results; s != 200 && s != -1 {
			t.Errorf("request during shutdown: %d", s)
		}
	}
	var order []string
	for _, l := range logtest.Parse(t, st.Service2.Output()) {
		if m, _ := l["msg"].(string); m == "http server stopped" || m == "database closed" {
			order = append(order, m)
		}
	}
	if strings.Join(order, ",") != "http server stopped,database closed" {
		t.Fatalf("service2 shutdown order: %v", order)
	}
}

func TestMySQLOutageThroughService1(t *testing.T) {
	st, _ := startStack(t)
	if st.MariaDB == nil {
		devstacktest.Missing(t, "needs a private mariadbd to stop and start")
	}
	base := st.Service1.URL()
	if r := call(t, "GET", base+"/", "", nil); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	if err := st.MariaDB.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := call(t, "GET", base+"/", "", nil)
	if r.status != 503 || !strings.Contains(r.body, "database unavailable") || time.Since(start) > 3*time.Second {
		t.Fatalf("MySQL down: %d %s after %s", r.status, r.body, time.Since(start))
	}
	if err := st.MariaDB.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/", 200, 5*time.Second) // recovered without a restart
}

func TestBadConfigExitsWithOneJSONLine(t *testing.T) {
	for bin, env := range map[string]string{
		"service1": "SERVICE2_TIMEOUT=soon",
		"service2": "DB_MAX_OPEN_CONNS=-3",
	} {
		cmd := exec.Command(bins[bin])
		cmd.Env = []string{env}
		out, err := cmd.Output()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: %v, want exit code 1", bin, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		var l map[string]any
		if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &l) != nil {
			t.Fatalf("%s: want one JSON line, got %q", bin, out)
		}
		name := strings.SplitN(env, "=", 2)[0]
		if e, _ := l["error"].(string); !strings.Contains(e, name+":") || l["level"] != "ERROR" {
			t.Fatalf("%s: line %v does not name %s", bin, l, name)
		}
	}
}

func TestHealthcheckSubcommand(t *testing.T) {
	st, _ := startStack(t)
	for _, p := range []*devstack.Process{st.Service1, st.Service2} {
		cmd := exec.Command(bins[p.Name], "healthcheck")
		cmd.Env = []string{"LISTEN_ADDR=" + p.Addr}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s healthcheck against a healthy process: %v %s", p.Name, err, out)
		}
	}
	port, _ := devstack.FreePort()
	cmd := exec.Command(bins["service1"], "healthcheck")
	cmd.Env = []string{fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port)}
	if err := cmd.Run(); err == nil {
		t.Error("healthcheck against nothing succeeded")
	}
}

// TestSIGTERMDuringLoadLosesNothing: SIGTERM reaches service1 in the middle
// of a load run; during SHUTDOWN_DRAIN it is not ready but still serves, so
// the run (which ends within the drain) sees zero failed requests, and the
// process then exits 0.
func TestSIGTERMDuringLoadLosesNothing(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{Env: map[string][]string{"service1": {"SHUTDOWN_DRAIN=4s"}}})
	load := exec.Command(bins["cmd/loadgen"], "-target", st.Service1.URL(), "-rate", "50", "-duration", "3s", "-json")
	out := make(chan []byte, 1)
	go func() {
		b, _ := load.Output()
		out <- b
	}()
	time.Sleep(time.Second)
	sigterm := time.Now()
	if err := st.Service1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if r := call(t, "GET", st.Service1.URL()+"/readyz", "", nil); r.status != 503 {
		t.Errorf("readyz during the drain: %d, want 503", r.status)
	}
	var sum struct {
		Requests   int `json:"requests"`
		Unexpected int `json:"unexpected"`
	}
	b := <-out
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("loadgen: %v: %s", err, b)
	}
	if sum.Requests < 140 || sum.Unexpected != 0 {
		t.Fatalf("load across SIGTERM: %d requests, %d unexpected answers", sum.Requests, sum.Unexpected)
	}
	code, err := st.Service1.Wait(20 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("service1 after SIGTERM: exit %d, %v", code, err)
	}
	t.Logf("%d requests, 0 failed; service1 exited 0 %s after SIGTERM", sum.Requests, time.Since(sigterm).Round(100*time.Millisecond))
}

// toolBin returns the path of a pinned tool that make installs (make e2e
// exports STATSD_EXPORTER_BIN, PROMETHEUS_BIN, PROMTOOL_BIN).
func toolBin(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		devstacktest.Missing(t, env+" is not set (run make e2e, which installs the pinned tools)")
	}
	if _, err := os.Stat(p); err != nil {
		devstacktest.Missing(t, env+": "+err.Error())
	}
	return p
}

// tools is a stack's Telemetry with the pinned tools named by the
// variables make e2e exports (STATSD_EXPORTER_BIN, PROMETHEUS_BIN,
// ALERTMANAGER_BIN, OTELCOL_BIN, JAEGER_BIN, NATS_SERVER_BIN), each through
// toolBin.
func tools(t *testing.T, vars ...string) devstack.Telemetry {
	t.Helper()
	var tl devstack.Telemetry
	fields := map[string]*string{
		"STATSD_EXPORTER_BIN": &tl.StatsdExporterBin, "PROMETHEUS_BIN": &tl.PrometheusBin,
		"ALERTMANAGER_BIN": &tl.AlertmanagerBin, "OTELCOL_BIN": &tl.OtelcolBin,
		"JAEGER_BIN": &tl.JaegerBin, "NATS_SERVER_BIN": &tl.NATSBin,
	}
	for _, v := range vars {
		field, ok := fields[v]
		if !ok {
			t.Fatalf("tools: %s is no part of a stack's Telemetry", v)
		}
		*field = toolBin(t, v)
	}
	return tl
}
