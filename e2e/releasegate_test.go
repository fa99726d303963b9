//go:build e2e

package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/failready/failready/devstack"
)

// TestReleaseGate runs make release-gate's command, short, against the
// stack make local runs: it passes on a healthy stack, one PASS line per
// SLO; with service2 slowed by 300 ms through toxiproxy, service1's latency
// SLO fails (p99 past 250 ms) and so does the exit status.
func TestReleaseGate(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "NATS_SERVER_BIN"),
		Chaos:     devstack.ChaosOptions{Enabled: true},
		NATS:      devstack.NATSOptions{Workers: 1},
		Env:       map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"}},
	})
	gate := func() (string, error) {
		out, err := exec.Command(bins["cmd/loadgen"], "-target", st.Service1.URL(), "-gate", st.Prometheus.URL(),
			"-rate", "30", "-duration", "20s", "-settle", "15s").CombinedOutput()
		return string(out), err
	}

	out, err := gate()
	t.Logf("healthy:\n%s", out)
	if err != nil {
		t.Fatalf("the gate failed a healthy stack: %v", err)
	}
	for _, slo := range []string{"service1-availability", "service1-latency", "welcome-freshness"} {
		if !strings.Contains(out, "PASS "+slo+" ") {
			t.Errorf("no PASS line for %s", slo)
		}
	}
	if !strings.Contains(out, "release gate: PASS") {
		t.Error("no overall PASS")
	}

	if _, err := st.Chaos.Service2.AddToxic("slow", "latency", "downstream", 1, toxiclient.Attributes{"latency": 300}); err != nil {
		t.Fatal(err)
	}
	defer resetChaos(t, st)
	out, err = gate()
	t.Logf("service2 slowed by 300 ms:\n%s", out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the gate's exit with service2 slowed: %v, want status 1", err)
	}
	if !strings.Contains(out, "FAIL service1-latency ") || !strings.Contains(out, "release gate: FAIL") {
		t.Error("no FAIL line for service1-latency, or no overall FAIL")
	}
}
