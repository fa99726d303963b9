package stackfiles

import (
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/failready/failready/devstack/lokidoor"
	"github.com/failready/failready/devstack/runbook"
)

// alertRunbooks is every alert of deploy/prometheus/rules with the
// runbook_url of each of its rules.
func alertRunbooks(t *testing.T) map[string][]string {
	t.Helper()
	type rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/prometheus/rules/*.yaml"))
	for _, f := range files {
		var r rules
		loadYAML(t, "deploy/prometheus/rules/"+filepath.Base(f), &r)
		for _, g := range r.Groups {
			for _, rule := range g.Rules {
				if rule.Alert != "" {
					out[rule.Alert] = append(out[rule.Alert], rule.Annotations["runbook_url"])
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no alert rules")
	}
	return out
}

// TestEveryAlertHasARunbook: each alert rule's runbook_url is its page,
// docs/runbooks/<alert>.md; each page is an alert's and is in the index;
// each names the fault that brings its alert on, and has at least one
// PromQL, LogQL and Jaeger query, the LogQL of the subset the Loki
// stand-in answers (so that make e2e can run it) and the Jaeger search
// naming a service.
func TestEveryAlertHasARunbook(t *testing.T) {
	alerts := alertRunbooks(t)
	pages, err := runbook.Read(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	index := readFile(t, runbook.Dir+"/README.md")
	byAlert := map[string]runbook.Page{}
	for _, p := range pages {
		byAlert[p.Alert] = p
		if _, ok := alerts[p.Alert]; !ok {
			t.Errorf("%s: no alert rule is named %s", p.Path, p.Alert)
		}
		if !strings.Contains(index, "("+p.Alert+".md)") {
			t.Errorf("%s is not in %s/README.md", p.Path, runbook.Dir)
		}
		if p.Fault == "" {
			t.Errorf("%s names no fault (<!-- fault: NAME -->)", p.Path)
		}
		kinds := map[string]int{}
		for _, q := range p.Queries {
			kinds[q.Kind]++
			switch q.Kind {
			case "logql":
				if _, err := lokidoor.ParseQuery(q.Text); err != nil {
					t.Errorf("%s: LogQL %q: %v", p.Path, q.Text, err)
				}
			case "jaeger":
				v, err := url.ParseQuery(q.Text)
				if err != nil || v.Get("service") == "" || v.Get("lookback") == "" {
					t.Errorf("%s: Jaeger search %q: want a query string with service and lookback (%v)", p.Path, q.Text, err)
				}
			}
		}
		for _, k := range runbook.Kinds {
			if kinds[k] == 0 {
				t.Errorf("%s has no %s query", p.Path, k)
			}
		}
	}
	for alert, urls := range alerts {
		want := runbook.Dir + "/" + alert + ".md"
		if _, ok := byAlert[alert]; !ok {
			t.Errorf("alert %s has no runbook (%s)", alert, want)
		}
		for _, u := range urls {
			if u != want {
				t.Errorf("alert %s: runbook_url %q, want %q", alert, u, want)
			}
		}
	}
	if len(byAlert) != len(alerts) {
		t.Errorf("pages %v, alerts %v", slices.Sorted(maps.Keys(byAlert)), slices.Sorted(maps.Keys(alerts)))
	}
}
