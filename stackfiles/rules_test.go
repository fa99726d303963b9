package stackfiles

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestEveryAlertHasUnitTests: each alert of deploy/prometheus/rules has
// promtool unit tests in deploy/prometheus/tests that expect it to fire
// (and, for each severity it has, with that severity), and that expect it
// silent at some time (a blip, or before it fires, or after it resolves).
// make e2e runs them.
func TestEveryAlertHasUnitTests(t *testing.T) {
	severities := map[string][]string{}
	for _, rule := range alertRules(t) {
		severities[rule.Alert] = append(severities[rule.Alert], rule.Labels["severity"])
	}
	type tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	fired, silent := map[string][]string{}, map[string]bool{}
	testFiles, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/prometheus/tests/*.test.yaml"))
	for _, f := range testFiles {
		var ts tests
		loadYAML(t, "deploy/prometheus/tests/"+filepath.Base(f), &ts)
		for _, tc := range ts.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) == 0 {
					silent[a.Alertname] = true
				}
				for _, e := range a.ExpAlerts {
					fired[a.Alertname] = append(fired[a.Alertname], e.ExpLabels["severity"])
				}
			}
		}
	}
	if len(severities) < 7 {
		t.Fatalf("only %d alerts in the rule files", len(severities))
	}
	for alert, sevs := range severities {
		for _, sev := range sevs {
			if !slices.Contains(fired[alert], sev) {
				t.Errorf("%s (severity %s): no unit test expects it to fire", alert, sev)
			}
		}
		if !silent[alert] {
			t.Errorf("%s: no unit test expects it silent", alert)
		}
	}
	for alert := range fired {
		if severities[alert] == nil {
			t.Errorf("the unit tests expect %s, which no rule file has", alert)
		}
	}
}

// alertRule is one alerting rule of deploy/prometheus/rules.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertRules is every alerting rule of deploy/prometheus/rules (the
// symptom alerts and Sloth's), each severity its own rule.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var out []alertRule
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/prometheus/rules/*.yaml"))
	if len(files) < 2 {
		t.Fatalf("rule files: %v", files)
	}
	for _, f := range files {
		var r struct {
			Groups []struct {
				Rules []alertRule `yaml:"rules"`
			} `yaml:"groups"`
		}
		loadYAML(t, "deploy/prometheus/rules/"+filepath.Base(f), &r)
		for _, g := range r.Groups {
			for _, rule := range g.Rules {
				if rule.Alert != "" {
					out = append(out, rule)
				}
			}
		}
	}
	return out
}
