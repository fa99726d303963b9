//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/internal/requestid"
)

var service1URL = regexp.MustCompile(`^\s+service1\s+(http://\S+)/`)

// TestMakeLocal runs what `make local` runs as a user would: it prints the
// URLs, serves them, and on each of the signals a user or a supervisor sends
// (SIGINT from Ctrl-C, SIGHUP from a closed terminal, SIGTERM from a
// supervisor or `timeout`, to make itself) it stops every process, removes
// its temporary folder and exits.
func TestMakeLocal(t *testing.T) {
	bin := buildLocal(t)
	flags := append(freePorts(), "-state", t.TempDir(), "-quiet")
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		make bool // through make local, the signal to make
	}{
		{"Ctrl-C", syscall.SIGINT, false},
		{"terminal closed", syscall.SIGHUP, false},
		{"SIGTERM to make local", syscall.SIGTERM, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, flags...)
			if c.make {
				cmd = exec.Command("make", "--no-print-directory", "local", "LOCAL_FLAGS="+strings.Join(flags, " "))
			}
			tmp := t.TempDir()
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			url := startLocal(t, cmd)
			_ = cmd.Process.Signal(c.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil && !c.make { // make exits with the status the recipe got
					t.Fatalf("cmd/local after %s: %v", c.sig, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("not stopped within 30s of %s", c.sig)
			}
			// Everything it started is gone: service1 does not answer, and
			// the temporary folder (data, configs, sockets) is removed.
			if resp, err := http.Get(url + "/"); err == nil {
				resp.Body.Close()
				t.Fatalf("service1 still answers after %s", c.sig)
			}
			left, _ := filepath.Glob(filepath.Join(tmp, "failready-*"))
			if len(left) > 0 {
				t.Errorf("left behind after %s: %v", c.sig, left)
			}
		})
	}
}

// TestMakeLocalChaos: the chaos targets of the Makefile work against make
// local as they do against compose (toxiproxy with compose's proxy names):
// service2 taken away answers 503, and chaos-reset brings it back.
func TestMakeLocalChaos(t *testing.T) {
	bin := buildLocal(t)
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	toxiproxy := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, append(freePorts(), "-toxiproxy", toxiproxy, "-state", t.TempDir(), "-quiet")...)
	cmd.Dir = repoRoot
	url := startLocal(t, cmd)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	makeChaos := func(target string) {
		t.Helper()
		out, err := exec.Command("make", "-C", repoRoot, "--no-print-directory", target, "TOXIPROXY=http://"+toxiproxy).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	makeChaos("chaos-service2-down")
	r := call(t, "GET", url+"/", "", nil)
	if r.status != 503 || !strings.Contains(r.body, `"request_id"`) {
		t.Fatalf("service2 taken away: %d %s", r.status, r.body)
	}
	makeChaos("chaos-reset")
	if _, ok := poll(20*time.Second, 200*time.Millisecond, func() bool { return call(t, "GET", url+"/", "", nil).status == 200 }); !ok {
		t.Fatal("GET / not 200 within 20 s of chaos-reset")
	}
}

// freePorts are the flags that move every listener of make local to a free
// port (a later -toxiproxy wins over the one here).
func freePorts() []string {
	var flags []string
	for _, name := range []string{"service1", "service2", "statsd-exporter", "prometheus", "toxiproxy", "jaeger", "otlp-grpc", "otlp-http", "statsd-udp", "loki", "nats", "nats-monitor"} {
		flags = append(flags, "-"+name, "127.0.0.1:0")
	}
	return flags
}

// buildLocal builds cmd/local (what make local runs) for a test.
func buildLocal(t *testing.T) string {
	t.Helper()
	if !devstack.MariaDBAvailable() && os.Getenv("MYSQL_TEST_DSN") == "" {
		devstacktest.Missing(t, "neither mariadbd nor MYSQL_TEST_DSN")
	}
	bin := filepath.Join(t.TempDir(), "local")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/local").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	return bin
}

// dieWithTheTest has cmd killed if the test process dies first (a timeout,
// a kill): the runner then takes its programs with it.
func dieWithTheTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// startLocal starts cmd, waits for the service1 URL it prints and checks
// that it serves.
func startLocal(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	dieWithTheTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := service1URL.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-time.After(90 * time.Second):
		t.Fatal("no service1 URL printed within 90s")
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !regexp.MustCompile(`"first_name":"joe"`).Match(body) {
		t.Fatalf("GET / through make local: %d %s", resp.StatusCode, body)
	}
	return url
}

// TestMakeLocalFirstRun: on a first run the tools are not built yet; the
// runner serves at once, builds them in the background with the command
// make gives it, and the telemetry joins: the services, started before any
// of it listened, reach Jaeger through the collector. (The build here copies
// the cached Jaeger where JAEGER_BIN points: the real build is what make
// local runs.)
func TestMakeLocalFirstRun(t *testing.T) {
	bin := buildLocal(t)
	jaeger, nats := toolBin(t, "JAEGER_BIN"), toolBin(t, "NATS_SERVER_BIN")
	for _, b := range []string{"STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "OTELCOL_BIN"} {
		toolBin(t, b)
	}
	dir, state := t.TempDir(), t.TempDir()
	notYet, natsNotYet := filepath.Join(dir, "jaeger"), filepath.Join(dir, "nats-server")
	cmd := exec.Command(bin, append(freePorts(), "-state", state, "-quiet")...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "JAEGER_BIN="+notYet, "NATS_SERVER_BIN="+natsNotYet,
		"LOCAL_BUILD_TOOLS=sleep 4 && cp "+jaeger+" "+notYet+" && cp "+nats+" "+natsNotYet)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	dieWithTheTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log(sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()
	var s1, jaegerURL string
	timeout := time.After(90 * time.Second)
	for jaegerURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the runner ended")
			}
			if strings.HasPrefix(l, "first run: building Jaeger") && s1 != "" {
				t.Error("the first-run notice came after the stack was up")
			}
			if m := service1URL.FindStringSubmatch(l); m != nil {
				s1 = m[1]
				// Serving before the telemetry and NATS are built; a
				// user created now has its task wait in the outbox.
				if r := call(t, "GET", s1+"/", "", nil); r.status != 200 {
					t.Fatalf("GET / before the telemetry: %d", r.status)
				}
				if r := call(t, "POST", s1+"/users", `{"first_name":"early","last_name":"bird"}`,
					map[string]string{"Content-Type": "application/json", requestid.Header: "e2e-before-nats"}); r.status != 201 {
					t.Fatalf("POST /users before NATS: %d %s", r.status, r.body)
				}
			}
			if m := regexp.MustCompile(`^\s+jaeger\s+(http://\S+)/api/services`).FindStringSubmatch(l); m != nil {
				if s1 == "" {
					t.Fatal("the telemetry joined before the stack was up")
				}
				jaegerURL = m[1]
			}
		case <-timeout:
			t.Fatal("the telemetry did not join within 90 s")
		}
	}
	r := call(t, "GET", s1+"/users/1", "", nil)
	waitJaegerTrace(t, jaegerURL, traceOf(t, r), 6, 30*time.Second)
	// NATS and the worker joined with the telemetry, and the task that
	// waited is done.
	welcomed := func() bool {
		b, _ := os.ReadFile(filepath.Join(state, "logs", "worker.log"))
		return strings.Contains(string(b), `"msg":"welcome message sent"`) && strings.Contains(string(b), `"request_id":"e2e-before-nats"`)
	}
	if _, ok := poll(30*time.Second, 200*time.Millisecond, welcomed); !ok {
		t.Error("the user created before NATS was built got no welcome message within 30 s of its joining")
	}
}
