//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAlertmanagerConfig: amtool (the pinned Alertmanager's) accepts
// deploy/alertmanager/alertmanager.yml, and routes each severity where the
// file says: a page to page, a ticket and anything else to ticket.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := toolBin(t, "AMTOOL_BIN")
	cfg := filepath.Join(repoRoot, "deploy/alertmanager/alertmanager.yml")
	if out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for labels, want := range map[string]string{
		"alertname=Service1Availability severity=page":   "page",
		"alertname=Service1Availability severity=ticket": "ticket",
		"alertname=CircuitBreakerOpen severity=ticket":   "ticket",
		"alertname=Unlabelled":                           "ticket",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + cfg}, strings.Fields(labels)...)
		out, err := exec.Command(amtool, args...).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("%s: routed to %q (%v); want %s", labels, got, err, want)
		}
	}
}

// notification is what alertlog lists at GET /alerts.
type notification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// notified lists what alertlog at base received, as alertname/severity
// by receiver ("page: Service1Availability/page").
func notified(t *testing.T, base string) (list []notification, seen map[string]bool) {
	t.Helper()
	resp, err := http.Get(base + "/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	seen = map[string]bool{}
	for _, n := range list {
		for _, a := range n.Alerts {
			seen[n.Receiver+": "+a.Labels["alertname"]+"/"+a.Labels["severity"]+" "+a.Status] = true
		}
	}
	return list, seen
}

// postAlerts sends alerts to Alertmanager's API as Prometheus does, active
// for ten minutes.
func postAlerts(t *testing.T, am string, labels ...map[string]string) {
	t.Helper()
	var alerts []map[string]any
	for _, l := range labels {
		alerts = append(alerts, map[string]any{"labels": l, "annotations": map[string]string{"summary": "sent by the test"},
			"startsAt": time.Now().UTC(), "endsAt": time.Now().Add(10 * time.Minute).UTC()})
	}
	b, _ := json.Marshal(alerts)
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
}

// inhibited names the alerts Alertmanager holds back, by alertname/severity.
func inhibited(t *testing.T, am string) map[string]bool {
	t.Helper()
	resp, err := http.Get(am + "/api/v2/alerts?inhibited=true&active=false&silenced=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range list {
		if len(a.Status.InhibitedBy) > 0 {
			out[a.Labels["alertname"]+"/"+a.Labels["severity"]] = true
		}
	}
	return out
}
