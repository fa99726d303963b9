package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics/statsdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"LISTEN_ADDR":        "8002",
		"WORKER_CONCURRENCY": "0",
		"WORKER_MAX_DELIVER": "many",
		"WORKER_ACK_WAIT":    "1ms",
		"TASK_FAILURE_RATE":  "1.5",
		"TASK_LATENCY":       "-1s",
		"MYSQL_ADDR":         "mysql",
	} {
		var out logtest.Buffer
		err := run(context.Background(), []string{"worker"}, envOf(map[string]string{name: val}), &out)
		if err == nil || !strings.Contains(err.Error(), name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: got %v, want a one-line error naming %s", name, val, err, name)
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestStartsWithoutNATSOrMySQL: the worker comes up live (it is waiting,
// not stuck) and not ready while neither NATS nor MySQL answers, and stops
// at once on SIGTERM.
func TestStartsWithoutNATSOrMySQL(t *testing.T) {
	base, out, stop := logtest.StartRun(t, func(ctx context.Context, stdout io.Writer) error {
		return run(ctx, []string{"worker"}, envOf(map[string]string{
			"LISTEN_ADDR": "127.0.0.1:0", "STATSD_ADDR": statsdtest.Listen(t).Addr(), "OTEL_SDK_DISABLED": "true",
			"NATS_URL": "nats://" + freeAddr(t), "MYSQL_ADDR": freeAddr(t),
		}), stdout)
	})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping took %v", took)
	}
	lines := out.Lines(t)
	for _, msg := range []string{"starting", "listening", "stopped consuming"} {
		if len(logtest.Find(lines, map[string]any{"msg": msg, "service": "worker"})) != 1 {
			t.Errorf("no %q line in %v", msg, lines)
		}
	}
}
