//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
)

// TestSLORules: the SLO rules are what Sloth makes of the specs (no drift:
// make slo-rules regenerates them), Prometheus's config and every rule file
// pass promtool's checks, and every alert passes its promtool unit tests
// (deploy/prometheus/tests: fires when it must, silent on a blip, resolves).
func TestSLORules(t *testing.T) {
	sloth, promtool := toolBin(t, "SLOTH_BIN"), toolBin(t, "PROMTOOL_BIN")
	generated := filepath.Join(t.TempDir(), "slo.yaml")
	if out, err := exec.Command(sloth, "generate", "--no-log", "-i", filepath.Join(repoRoot, "deploy/slo/failready.yaml"), "-o", generated).CombinedOutput(); err != nil {
		t.Fatalf("sloth generate: %v\n%s", err, out)
	}
	want, err := os.ReadFile(generated)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/rules/slo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deploy/prometheus/rules/slo.yaml is not what Sloth makes of deploy/slo/failready.yaml: run make slo-rules and commit both")
	}
	for _, args := range [][]string{
		{"check", "config", filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml")},
		{"test", "rules", "alerts.test.yaml", "slo.test.yaml"},
	} {
		start := time.Now()
		cmd := exec.Command(promtool, args...)
		if args[0] == "test" {
			cmd.Dir = filepath.Join(repoRoot, "deploy/prometheus/tests")
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s: passed in %v", strings.Join(args, " "), time.Since(start).Round(time.Second))
	}
}

// TestSLORecordingRulesOnRealSeries: the real Prometheus, with the
// project's config, loads every rule file; the SLO recording rules, fed by
// the services' and the worker's real series under loadgen's mix, give the
// error shares that loadgen itself saw: none while healthy (the honeypot's
// deliberate 500s are not errors: without the exclusion, about 2 %), and,
// with service2 stopped, the share of answers that were 5xx. Alerting, on
// the same stack: the real Alertmanager routes a page and a ticket where
// deploy/alertmanager says and holds back the ticket of an SLO that pages;
// and with service2 still away, service1's breaker does not close, the
// real rule fires after its minute, and CircuitBreakerOpen reaches the webhook
// receiver (alertlog) through the ticket route.
func TestSLORecordingRulesOnRealSeries(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "ALERTMANAGER_BIN", "NATS_SERVER_BIN"),
		NATS:      devstack.NATSOptions{Workers: 1},
		Env:       map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"}}})
	prom := st.Prometheus.URL()

	// Every group of both files, loaded and healthy.
	resp, err := http.Get(prom + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Data struct {
			Groups []struct {
				File  string `json:"file"`
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rules)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	files, n := map[string]bool{}, 0
	for _, g := range rules.Data.Groups {
		files[filepath.Base(g.File)] = true
		n += len(g.Rules)
	}
	if !files["slo.yaml"] || !files["alerts.yaml"] || n < 55 {
		t.Fatalf("Prometheus loaded %d rules from %v; want slo.yaml's and alerts.yaml's 55", n, files)
	}

	// Routing and inhibition, with alerts sent as Prometheus sends them:
	// SLO a pages and tickets, SLO b only tickets. Checked after the
	// healthy load, past both routes' group_wait.
	am, alertlog := st.Alertmanager.URL(), st.AlertLog.URL()
	postAlerts(t, am,
		map[string]string{"alertname": "InjectedBurn", "severity": "page", "sloth_id": "a"},
		map[string]string{"alertname": "InjectedBurn", "severity": "ticket", "sloth_id": "a"},
		map[string]string{"alertname": "InjectedBurn", "severity": "ticket", "sloth_id": "b"})
	injected := time.Now()

	ratio := func(slo string) (float64, bool) {
		return promValue(t, prom, `slo:sli_error:ratio_rate5m{sloth_slo="`+slo+`"}`)
	}
	// rate() does not count what a series held at its first scrape, and
	// statsd-exporter makes a series at its first increment: a few
	// requests first, and two scrapes, so that the measured runs are
	// counted whole (and loadgen counts those few too).
	scrapes := func() { time.Sleep(11 * time.Second) }
	warm := runMix(t, st.Service1.URL(), 20, time.Second)
	scrapes()
	healthy := runMix(t, st.Service1.URL(), 50, 20*time.Second)
	if healthy.Unexpected != 0 || healthy.Statuses["500"] == 0 {
		t.Fatalf("healthy load: %d unexpected, statuses %v (want the honeypot's 500s among them)", healthy.Unexpected, healthy.Statuses)
	}
	for _, slo := range []string{"service1-availability", "service1-latency", "welcome-freshness"} {
		var v float64
		var ok bool
		poll(30*time.Second, time.Second, func() bool { v, ok = ratio(slo); return ok })
		if !ok || v != 0 {
			t.Errorf("%s: error ratio over 5m %v (present %v) after a healthy load; want 0", slo, v, ok)
		}
	}

	// The page at once, the ticket of b, never a's: it is inhibited.
	_, ok := poll(time.Until(injected.Add(90*time.Second)), time.Second, func() bool {
		_, seen := notified(t, alertlog)
		return seen["page: InjectedBurn/page firing"] && seen["ticket: InjectedBurn/ticket firing"]
	})
	list, _ := notified(t, alertlog)
	for _, n := range list {
		for _, a := range n.Alerts {
			if a.Labels["alertname"] == "InjectedBurn" && (n.Receiver != a.Labels["severity"] || a.Labels["severity"] == "ticket" && a.Labels["sloth_id"] != "b") {
				t.Errorf("%s received %v: a ticket of an SLO that pages, or a route by the wrong severity", n.Receiver, a.Labels)
			}
		}
	}
	if !ok || !inhibited(t, am)["InjectedBurn/ticket"] {
		t.Errorf("after %v: notifications %+v, inhibited %v; want the page and b's ticket notified, a's ticket inhibited",
			time.Since(injected).Round(time.Second), list, inhibited(t, am))
	}

	// service2 away: service1 answers 503 for what needs it.
	if err := st.Service2.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	first := runMix(t, st.Service1.URL(), 10, time.Second)
	scrapes()
	down := runMix(t, st.Service1.URL(), 50, 20*time.Second)
	var bad, honeypot, total float64
	for _, r := range []mixRun{warm, healthy, first, down} {
		for code, c := range r.Statuses {
			total += float64(c)
			switch {
			case code == "500":
				honeypot += float64(c) // the honeypot's: service2's absence is a 503
			case code >= "500":
				bad += float64(c)
			}
		}
	}
	truth := bad / (total - honeypot)
	// Within 10 %: rate() extrapolates each series a little toward the
	// window's start, more for the younger 503s.
	var v float64
	if _, ok := poll(30*time.Second, time.Second, func() bool {
		v, _ = ratio("service1-availability")
		return math.Abs(v-truth)/truth <= 0.1
	}); !ok {
		t.Fatalf("availability's error ratio over 5m is %.3f; loadgen saw %.0f 5xx of %.0f answers (the honeypot's %.0f aside): %.3f", v, bad, total-honeypot, honeypot, truth)
	}
	t.Logf("availability's error ratio over 5m: %.3f; loadgen saw %.3f (%.0f 5xx of %.0f answers, the honeypot's %.0f aside); 0 for all three SLOs while healthy",
		v, truth, bad, total-honeypot, honeypot)

	// Still away, under a light load: the breaker cycles open, half-open
	// (its probe fails), open, never closing; the rule fires once it has
	// not closed for a minute, and the ticket route notifies after its
	// group_wait.
	load := exec.Command(bins["cmd/loadgen"], "-target", st.Service1.URL(), "-rate", "10", "-duration", "4m", "-only", "get user")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = load.Process.Kill(); _ = load.Wait() }()
	took, ok := poll(3*time.Minute, 2*time.Second, func() bool {
		_, seen := notified(t, alertlog)
		return seen["ticket: CircuitBreakerOpen/ticket firing"]
	})
	if !ok {
		list, _ := notified(t, alertlog)
		t.Fatalf("CircuitBreakerOpen did not reach alertlog in %v: %+v", took, list)
	}
	t.Logf("CircuitBreakerOpen reached alertlog %v after the last check (its rule waits 1m, the ticket route 30s)", took.Round(time.Second))
}
