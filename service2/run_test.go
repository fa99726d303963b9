package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics/statsdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"LISTEN_ADDR":          "8001",
		"MYSQL_ADDR":           "mysql",
		"DB_MAX_OPEN_CONNS":    "0",
		"DB_CONN_MAX_LIFETIME": "10m",
		"DB_QUERY_TIMEOUT":     "soon",
		"LOG_LEVEL":            "loud",
		"SHUTDOWN_TIMEOUT":     "-1s",
	} {
		var out logtest.Buffer
		err := run(context.Background(), []string{"service2"}, envOf(map[string]string{name: val}), &out)
		if err == nil || !strings.Contains(err.Error(), name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: got %v, want a one-line error naming %s", name, val, err, name)
		}
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startService2 runs service2's run() with env on top of test defaults
// (loopback port, a statsd receiver, tracing off) and returns its base URL,
// its log buffer, and a stop func (SIGTERM) returning run's error.
func startService2(t *testing.T, env map[string]string) (string, *logtest.Buffer, func() error) {
	t.Helper()
	e := map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "STATSD_ADDR": statsdtest.Listen(t).Addr(), "OTEL_SDK_DISABLED": "true",
	}
	for k, v := range env {
		e[k] = v
	}
	return logtest.StartRun(t, func(ctx context.Context, stdout io.Writer) error {
		return run(ctx, []string{"service2"}, envOf(e), stdout)
	})
}

// TestStartsWithoutMySQL: the service comes up, live but not ready, while
// MySQL is unreachable, and shuts down cleanly.
func TestStartsWithoutMySQL(t *testing.T) {
	base, out, stop := startService2(t, map[string]string{"MYSQL_ADDR": freeAddr(t), "DB_DIAL_TIMEOUT": "200ms"})

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/users": 503} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines := out.Lines(t)
	for _, msg := range []string{"starting", "listening", "http server stopped", "database closed"} {
		if len(logtest.Find(lines, map[string]any{"msg": msg, "service": "service2", "version": "dev"})) != 1 {
			t.Errorf("no %q line", msg)
		}
	}
}
