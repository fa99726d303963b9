//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWalkthroughs runs walkthroughs 1 to 7 of docs/walkthroughs.md as a
// reader does: `make local` on compose's ports with its default state
// folder, then `make walkthrough-logging`, -metrics, -tracing, -chaos,
// -logs-pipeline, -worker and -kubernetes (its native steps), whose scripts run the walkthroughs' own commands (curl
// localhost:8000, scripts/logs, make chaos-*, make load, Jaeger's,
// Prometheus's and Loki's APIs) and check what the walkthroughs say the
// reader sees.
func TestWalkthroughs(t *testing.T) {
	buildLocal(t) // skips without MySQL
	for _, bin := range []string{"STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "OTELCOL_BIN", "JAEGER_BIN", "NATS_SERVER_BIN"} {
		toolBin(t, bin)
	}
	// This machine runs a NATS of its own on 4222: make local's moves
	// aside, as make local's error says to.
	cmd := exec.Command("make", "--no-print-directory", "local", "LOCAL_FLAGS=-quiet -nats 127.0.0.1:0")
	cmd.Dir = repoRoot
	startLocal(t, cmd)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("make local did not stop within 60 s of SIGTERM")
		}
	}()
	for _, w := range []string{"logging", "metrics", "tracing", "chaos", "logs-pipeline", "worker", "kubernetes"} {
		t.Run(w, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			out, err := exec.CommandContext(ctx, "make", "-C", repoRoot, "--no-print-directory", "walkthrough-"+w).CombinedOutput()
			if err != nil {
				lines := strings.Split(string(out), "\n")
				if len(lines) > 80 {
					lines = lines[len(lines)-80:]
				}
				t.Fatalf("make walkthrough-%s: %v\n%s", w, err, strings.Join(lines, "\n"))
			}
			if !strings.Contains(string(out), "walkthrough: all steps passed") {
				t.Fatalf("make walkthrough-%s ended without its last line:\n%s", w, out)
			}
			t.Logf("walkthrough %s passed in %s", w, time.Since(start).Round(time.Second))
		})
	}
	if t.Failed() {
		if b, err := os.ReadFile(repoRoot + "/.cache/local/logs/local.log"); err == nil {
			t.Logf("the runner's own log:\n%s", b)
		}
	}
}
