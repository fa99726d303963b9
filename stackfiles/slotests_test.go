package stackfiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The promtool unit tests of the SLO alerts (deploy/prometheus/tests/
// slo.test.yaml) are written by sloRuleTests below: each test is a few
// phases of bad events a minute after a healthy day, and the alerts
// expected at given minutes, which were worked out from the windows (each
// comment says the arithmetic) before they were run. make e2e runs them
// with promtool; TestSLORuleTestsGenerated holds the file equal to what
// this writes (UPDATE_SLO_TESTS=1 rewrites it: make slo-rules does).

// healthyDay is the history before each test's phases, in minutes: a day,
// not a month, since promtool evaluates every rule every minute and a longer
// history costs minutes of CI.
const healthyDay = 1440

// perMinute is the events a minute of every test.
const perMinute = 600

type sloUnderTest struct {
	alert, slo, category, summary, runbookURL string
}

var slosUnderTest = map[string]sloUnderTest{
	"availability": {"Service1Availability", "service1-availability", "availability",
		"service1 is answering 5xx fast enough to spend its 30-day error budget early", "docs/runbooks/Service1Availability.md"},
	"latency": {"Service1Latency", "service1-latency", "latency",
		"service1 is answering slower than 250 ms often enough to spend its 30-day budget early", "docs/runbooks/Service1Latency.md"},
	"freshness": {"WelcomeFreshness", "welcome-freshness", "freshness",
		"welcome tasks are taking longer than 30 s often enough to spend the 30-day budget early", "docs/runbooks/WelcomeFreshness.md"},
}

// phase is some minutes at a rate a minute.
type phase struct{ minutes, rate int }

// counter is a counter's promtool values: the phases one after another,
// the first from 0.
func counter(phases []phase) string {
	var out []string
	v := 0
	for i, p := range phases {
		switch {
		case i == 0:
			out = append(out, fmt.Sprintf("%d+%dx%d", v, p.rate, p.minutes))
		case p.rate != 0:
			out = append(out, fmt.Sprintf("%d+%dx%d", v+p.rate, p.rate, p.minutes-1))
		default:
			out = append(out, fmt.Sprintf("%dx%d", v, p.minutes-1))
		}
		v += p.rate * p.minutes
	}
	return strings.Join(out, " ")
}

// sloSeries are the input series of an SLO after a healthy day, bad events
// a minute in each phase (of perMinute in all).
func sloSeries(kind string, bad []phase) [][2]string {
	good, badc, total := []phase{{healthyDay, perMinute}}, []phase{{healthyDay, 0}}, []phase{{healthyDay, perMinute}}
	n := healthyDay
	for _, p := range bad {
		good = append(good, phase{p.minutes, perMinute - p.rate})
		badc = append(badc, p)
		total = append(total, phase{p.minutes, perMinute})
		n += p.minutes
	}
	const (
		ok       = `http_server_request_duration_seconds_count{service="service1",route="/users/{id}",method="GET",status="200"}`
		honeypot = `http_server_request_duration_seconds_count{service="service1",route="/honeypot",method="GET",status="500"}`
	)
	// The honeypot's deliberate 500s, all along, count nowhere.
	honeypotValues := fmt.Sprintf("0+60x%d", n)
	switch kind {
	case "availability":
		return [][2]string{{ok, counter(good)},
			{`http_server_request_duration_seconds_count{service="service1",route="/users/{id}",method="GET",status="503"}`, counter(badc)},
			{honeypot, honeypotValues}}
	case "latency":
		return [][2]string{{ok, counter(total)},
			{`http_server_request_duration_seconds_bucket{service="service1",route="/users/{id}",method="GET",status="200",le="0.25"}`, counter(good)},
			{honeypot, honeypotValues},
			{`http_server_request_duration_seconds_bucket{service="service1",route="/honeypot",method="GET",status="500",le="0.25"}`, fmt.Sprintf("0x%d", n)}}
	}
	return [][2]string{{`worker_task_end_to_end_seconds_count{service="worker",task="tasks.welcome"}`, counter(total)},
		{`worker_task_end_to_end_seconds_bucket{service="worker",task="tasks.welcome",le="30"}`, counter(good)}}
}

// expect is the alerts' severities at a minute after the healthy day.
type expect struct {
	minute     int
	severities []string
}

// sloTest is one promtool test: one or more SLOs fed the same phases
// (several in one test: fewer steps to run).
func sloTest(name string, kinds []string, comment string, bad []phase, evals []expect) string {
	var b strings.Builder
	b.WriteString("\n")
	for _, l := range wrap(comment, 74) {
		b.WriteString("  # " + l + "\n")
	}
	fmt.Fprintf(&b, "  - name: %s\n    interval: 1m\n    input_series:\n", name)
	for _, k := range kinds {
		for _, s := range sloSeries(k, bad) {
			fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", s[0], s[1])
		}
	}
	b.WriteString("    alert_rule_test:\n")
	for _, k := range kinds {
		s := slosUnderTest[k]
		for _, e := range evals {
			fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: %s\n", healthyDay+e.minute, s.alert)
			if len(e.severities) == 0 {
				b.WriteString("        exp_alerts: []\n")
				continue
			}
			b.WriteString("        exp_alerts:\n")
			for _, sev := range e.severities {
				fmt.Fprintf(&b, "          - exp_labels: {owner: workshop, sloth_id: failready-%s, sloth_service: failready, sloth_slo: %s, category: %s, severity: %s, sloth_severity: %s}\n",
					s.slo, s.slo, s.category, sev, sev)
				fmt.Fprintf(&b, "            exp_annotations:\n              summary: %q\n              runbook_url: %s\n              title: \"(%s) failready %s SLO error budget burn rate is too fast.\"\n",
					s.summary, s.runbookURL, sev, s.slo)
			}
		}
	}
	return b.String()
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

const sloTestsHead = `promtool test rules for the SLO alerts Sloth generates
(deploy/prometheus/rules/slo.yaml, from deploy/slo/failready.yaml): the SRE
workbook's multiwindow, multi-burn-rate alerts. Each test starts with a
healthy day at 600 events a minute (a day, not a month: promtool evaluates
every rule every minute, and a longer history costs minutes of CI); its
minutes count from that day's end (1440m). A page: the error share over 1 h
and 5 m above 14.4 times the budget, or over 6 h and 30 m above 6 times; a
ticket: over 1 d and 2 h above 3 times, or over 3 d and 6 h above once. The
budget is 0.5 % for availability, 1 % for latency and freshness. Each
expectation below was worked out from those windows before it was run; the
e2e tests run them. stackfiles/slotests_test.go writes this file
(UPDATE_SLO_TESTS=1; make slo-rules does) and holds it equal.`

// sloRuleTests is deploy/prometheus/tests/slo.test.yaml.
func sloRuleTests() string {
	var b strings.Builder
	for _, l := range wrap(sloTestsHead, 76) {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("rule_files:\n  - ../rules/slo.yaml\nevaluation_interval: 1m\ntests:\n")
	one := func(k string) []string { return []string{k} }
	page, ticket, both := []string{"page"}, []string{"ticket"}, []string{"page", "ticket"}
	for _, t := range []string{
		sloTest("availability-outage", one("availability"), "availability, a full outage of 15 minutes (service2 down: every answer a 503). The page fires once the 1 h window passes 7.2 %: after 4.3 minutes, so by 6 and not at 3; it stays after the outage while the 30 m window is above 3 % and the 6 h one is at 4.2 % (15/360), and resolves when the 30 m window has left the outage (45 m). A ticket too, from about 8 minutes: the 3 d window has seen only the one day, and 15 minutes is 1 % of it (twice the budget; 0.5 % from 7.2 minutes), which the 6 h window confirms; it lasts while the outage is in the 6 h window. Over a month of history the same outage would page only. The honeypot's deliberate 500s, all along, count nowhere.",
			[]phase{{15, perMinute}, {60, 0}}, []expect{{3, nil}, {6, page}, {10, both}, {42, both}, {47, ticket}, {60, ticket}}),
		sloTest("availability-blip", one("availability"), "availability, a blip: 2 minutes of full outage. Silent: the 1 h window reaches 3.3 % (a page needs 7.2 %), the 6 h one 0.56 % (a page needs 3 % with the 30 m one), the 1 d and 3 d ones 0.14 % (a ticket needs 1.5 % with the 2 h one, or 0.5 % with the 6 h one).",
			[]phase{{2, perMinute}, {60, 0}}, []expect{{1, nil}, {2, nil}, {3, nil}, {10, nil}, {30, nil}, {60, nil}}),
		sloTest("availability-slow-burn", one("availability"), "availability, a slow burn: 2 % of answers fail (4 times the budget) for 10 hours. Never a page (6 times is 3 %). A ticket once the 6 h window passes 0.5 % (after 1.5 hours) and the 3 d one too: 0.02 m / (1440 + m) > 0.005 once m > 480, so after 8 hours; not at 7 h, by 9 h. (The 1 d window would pass 1.5 % only after 18 hours.)",
			[]phase{{600, 12}}, []expect{{60, nil}, {420, nil}, {540, ticket}}),
		sloTest("latency-outage", one("latency"), "latency, every answer slower than 250 ms for 12 minutes. The page fires once the 1 h window passes 14.4 %: after 8.6 minutes, so by 10 and not at 7; the 30 m / 6 h pair stays under (6 h: 3.3 %, under 6 %), so it resolves when the 5 m window has left the slowness (17 m). No ticket: the 3 d window reaches 0.83 % (12/1452, under 1 %), the 1 d one 0.83 % (under 3 %).",
			[]phase{{12, perMinute}, {60, 0}}, []expect{{7, nil}, {10, page}, {15, page}, {20, nil}, {60, nil}}),
		sloTest("freshness-outage", one("freshness"), "freshness, every welcome task later than 30 s for 12 minutes (NATS away: the tasks wait in the outbox). As latency: a page by 10 minutes and not at 7, resolved by 20, no ticket.",
			[]phase{{12, perMinute}, {60, 0}}, []expect{{7, nil}, {10, page}, {15, page}, {20, nil}, {60, nil}}),
		sloTest("latency-freshness-slow-burn", []string{"latency", "freshness"}, "latency and freshness, a slow burn each: 4 % of answers slower than 250 ms, and 4 % of tasks later than 30 s (4 times the budget), for 10 hours. Never a page (6 times is 6 %). A ticket once the 6 h window passes 1 % (after 1.5 hours) and the 3 d one too: 0.04 m / (1440 + m) > 0.01 once m > 480, so after 8 hours; not at 7 h, by 9 h.",
			[]phase{{600, 24}}, []expect{{60, nil}, {420, nil}, {540, ticket}}),
	} {
		b.WriteString(t)
	}
	return b.String()
}

// TestSLORuleTestsGenerated: deploy/prometheus/tests/slo.test.yaml is what
// sloRuleTests writes (UPDATE_SLO_TESTS=1 rewrites it).
func TestSLORuleTestsGenerated(t *testing.T) {
	path := filepath.Join(repoRoot, "deploy/prometheus/tests/slo.test.yaml")
	want := sloRuleTests()
	if os.Getenv("UPDATE_SLO_TESTS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("deploy/prometheus/tests/slo.test.yaml is not what stackfiles/slotests_test.go writes: run UPDATE_SLO_TESTS=1 go test ./stackfiles -run TestSLORuleTestsGenerated (make slo-rules), and commit it")
	}
}
