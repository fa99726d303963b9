package stackfiles

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/failready/failready/devstack/lokidoor"
	"github.com/failready/failready/devstack/runbook"
)

// TestEveryAlertHasARunbook: each alert rule's runbook_url is its page,
// docs/runbooks/<alert>.md; each page is an alert's and is in the index;
// each names the fault that brings its alert on, and has at least one
// PromQL, LogQL and Jaeger query, the LogQL of the subset the Loki
// stand-in answers (so that make e2e can run it) and the Jaeger search
// naming a service.
func TestEveryAlertHasARunbook(t *testing.T) {
	alerts := map[string][]string{} // each alert's rules' runbook_url
	for _, rule := range alertRules(t) {
		alerts[rule.Alert] = append(alerts[rule.Alert], rule.Annotations["runbook_url"])
	}
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
