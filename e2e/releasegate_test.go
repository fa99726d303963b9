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
// SLO and one for the load; with service2 slowed by 300 ms through
// toxiproxy, service1's latency SLO fails (p99 past 250 ms) and so does the
// exit status. Between the two, make release-gate-capacity's search runs
// end to end: service1's per-client limit is 60/s here, so 20/s passes and
// 120/s fails on the load's 429s, which no SLO counts, instead of passing
// as the limit's capacity.
func TestReleaseGate(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "NATS_SERVER_BIN"),
		Chaos:     devstack.ChaosOptions{Enabled: true},
		NATS:      devstack.NATSOptions{Workers: 1},
		Env:       map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=60", "RATE_LIMIT_GLOBAL=100000"}},
	})
	gate := func(args ...string) (string, error) {
		if len(args) == 0 {
			args = []string{"-rate", "30", "-duration", "20s", "-settle", "15s"}
		}
		out, err := exec.Command(bins["cmd/loadgen"], append([]string{"-target", st.Service1.URL(), "-gate", st.Prometheus.URL()}, args...)...).CombinedOutput()
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
	if !strings.Contains(out, "release gate: PASS") || !strings.Contains(out, "PASS load ") {
		t.Error("no overall PASS, or no PASS line for the load")
	}

	out, err = gate("-capacity", "-rates", "20,120", "-duration", "10s", "-settle", "10s", "-capacity-table", "../docs/kubernetes.md")
	t.Logf("capacity, under a limit of 60/s:\n%s", out)
	if err != nil {
		t.Fatalf("the capacity search: %v", err)
	}
	for _, want := range []string{
		"capacity: 20/s for 20s", "capacity: 120/s for 20s", "FAIL load ", "429×", "were service1's rate limit",
		"capacity: 120/s fails", "capacity: 20/s is the highest rate tried",
		"capacity: ../docs/kubernetes.md's table: 600/s within the latency objective",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the capacity search did not say %q", want)
		}
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
