package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/devstack/devstacktest"
)

const repoRoot = "../.."

// The gate reads the SLOs from the recording rules as the pinned Prometheus
// answers them (its own printing of each expression, not the file's), and
// a run with no traffic is no verdict: a FAIL, never a PASS.
func TestGateReadsTheRecordingRules(t *testing.T) {
	rules, _ := filepath.Abs(filepath.Join(repoRoot, "deploy/prometheus/rules/slo.yaml"))
	addr := devstacktest.Prometheus(t, "global: {evaluation_interval: 1s}\nrule_files: ['"+rules+"']\n")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var out bytes.Buffer
	attacked := false
	pass, vs, err := gate(ctx, &out, "http://"+addr, 0, func() (*Summary, error) {
		attacked = true
		return &Summary{Rate: 1, Planned: 10, Requests: 10}, nil
	})
	if err != nil || !attacked {
		t.Fatalf("gate: %v (attacked %v)", err, attacked)
	}
	got := map[string]Verdict{}
	for _, v := range vs {
		got[v.SLO] = v
	}
	for name, objective := range map[string]float64{"service1-availability": 0.995, "service1-latency": 0.99, "welcome-freshness": 0.99} {
		v, ok := got[name]
		if !ok || v.Objective != objective || v.Pass || v.Err == "" {
			t.Errorf("%s: %+v; want objective %v, and no verdict without traffic", name, v, objective)
		}
	}
	if got["service1-latency"].Threshold != 0.25 || got["welcome-freshness"].Threshold != 30 || got["service1-availability"].Threshold != 0 {
		t.Errorf("thresholds: latency %v, freshness %v, availability %v; want 0.25, 30, none",
			got["service1-latency"].Threshold, got["welcome-freshness"].Threshold, got["service1-availability"].Threshold)
	}
	if pass || len(vs) != 3 || strings.Count(out.String(), "FAIL ") != 3 || !strings.Contains(out.String(), "PASS load ") {
		t.Errorf("a run without traffic passed, or not one line per SLO and one for the load:\n%s", out.String())
	}
}

// The load's own verdict: what no SLI sees. A rate limit's 429s fail it
// and say how to judge capacity instead; so does a machine that could not
// send the rate; a healthy run within the tightest budget (0.5 % here)
// passes.
func TestJudgeLoad(t *testing.T) {
	slos := []sloRule{{Name: "a", Objective: 0.99}, {Name: "b", Objective: 0.995}}
	for _, c := range []struct {
		name string
		s    Summary
		pass bool
		want []string
	}{
		{"healthy", Summary{Rate: 50, Planned: 3000, Requests: 3000, Unexpected: 15, UnexpectedBy: map[string]int{"0": 15}}, true,
			[]string{"PASS load ", "3000 of 3000 requests sent at 50/s, 15 answers unexpected (0.50 %, at most 0.50 %", "by status (0: no answer): 0×15"}},
		{"rate-limited", Summary{Rate: 800, Planned: 16000, Requests: 16000, Unexpected: 14400, UnexpectedBy: map[string]int{"429": 14400}}, false,
			[]string{"FAIL load ", "(90.00 %, at most 0.50 %", "429×14400", "14400 were service1's rate limit", "RATE_LIMIT_PER_CLIENT"}},
		{"not sent", Summary{Rate: 2000, Planned: 40000, Requests: 30000, UnexpectedBy: map[string]int{}}, false,
			[]string{"FAIL load ", "30000 of 40000 requests sent", "this machine sent under 95 % of 2000/s"}},
		{"one over", Summary{Rate: 50, Planned: 3000, Requests: 3000, Unexpected: 16, UnexpectedBy: map[string]int{"503": 16}}, false,
			[]string{"FAIL load ", "503×16"}},
		{"nothing", Summary{Rate: 1, Planned: 0, UnexpectedBy: map[string]int{}}, false, []string{"FAIL load "}},
	} {
		pass, line := judgeLoad(&c.s, slos)
		if pass != c.pass {
			t.Errorf("%s: pass %v, want %v: %s", c.name, pass, c.pass, line)
		}
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: no %q in %q", c.name, w, line)
			}
		}
	}
}

func TestThreshold(t *testing.T) {
	for q, want := range map[string][3]string{
		`sum(rate(h_bucket{le="0.25",route!="/honeypot",service="service1"}[5m]))`: {"h_bucket", `route!="/honeypot", service="service1"`, "0.25"},
		`sum(rate(w_bucket{task="tasks.welcome",le=~"30|30.0"}[5m]))`:              {"w_bucket", `task="tasks.welcome"`, "30"},
		`sum(rate(c_count{service="service1"}[5m]))`:                               {"", "", "0"},
	} {
		name, sel, le := threshold(q)
		if name != want[0] || sel != want[1] || fmt.Sprint(le) != want[2] {
			t.Errorf("threshold(%s) = %q, %q, %v; want %q", q, name, sel, le, want)
		}
	}
}

func TestSplitDivision(t *testing.T) {
	for q, want := range map[string][2]string{
		`(sum(rate(a{route!="/x"}[5m])) or vector(0)) / sum(rate(b[5m]))`: {`(sum(rate(a{route!="/x"}[5m])) or vector(0))`, `sum(rate(b[5m]))`},
		"(x)\n/\n(y)":           {"(x)", "(y)"},
		`a{p=~"a/b"} / (b / c)`: {`a{p=~"a/b"}`, `(b / c)`},
	} {
		num, den, ok := splitDivision(q)
		if !ok || num != want[0] || den != want[1] {
			t.Errorf("splitDivision(%q) = %q, %q, %v; want %q", q, num, den, ok, want)
		}
	}
	if _, _, ok := splitDivision(`sum(rate(a{r="/"}[5m]))`); ok {
		t.Error("no division found one")
	}
}

// The capacity table of docs/kubernetes.md, as the gate reads it: its knee
// within 250 ms is the highest rate without unexpected answers.
func TestCapacityTableOfTheDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs/kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := capacityTable(string(b))
	if len(rows) < 4 {
		t.Fatalf("rows %v", rows)
	}
	knee, ok := tableKnee(rows, 0.25)
	if !ok || knee.Rate != 600 {
		t.Errorf("knee %+v, want 600/s (800/s has unexpected answers and a p99 past 250 ms)", knee)
	}
}

func TestVerdictLines(t *testing.T) {
	var out bytes.Buffer
	pass := printVerdicts(&out, []Verdict{
		{SLO: "service1-latency", Pass: true, ErrorShare: 0.001, Events: 3000, BurnRate: 0.1, Burned: 0.1 * 60 / budgetPeriod.Seconds(),
			P99: 0.0123, Threshold: 0.25, Objective: 0.99},
		{SLO: "service1-availability", ErrorShare: 0.02, Events: 3000, BurnRate: 4, Objective: 0.995, P99: math.NaN()},
	})
	if pass {
		t.Error("a burn rate of 4 passed")
	}
	for _, want := range []string{
		"PASS service1-latency       bad 0.10 % of about 3000 events, budget 1.00 % (objective 99 %): burn rate 0.10×",
		"; p99 12.3 ms against 250.0 ms",
		"FAIL service1-availability  bad 2.00 % of about 3000 events, budget 0.50 % (objective 99.5 %): burn rate 4.00×",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}

// The search stops at the first rate that fails, says so when every rate
// passed (the capacity is above the last one), and stops before a step that
// would pass its time bound.
func TestCapacitySearch(t *testing.T) {
	latency := []Verdict{{SLO: "service1-latency", Pass: true, Threshold: 0.25}}
	for _, c := range []struct {
		name    string
		failAt  int
		maxTime time.Duration
		want    []string
		tried   int
		wantErr bool
	}{
		{"a rate fails", 300, time.Hour, []string{"capacity: 300/s fails", "capacity: 200/s is the highest rate tried", "table: 600/s within"}, 3, false},
		{"every rate passes", 0, time.Hour, []string{"capacity: 400/s is the highest", "every rate tried passed, so the capacity is 400/s or more"}, 4, false},
		{"the first fails", 100, time.Hour, []string{"capacity: 100/s fails"}, 1, true},
		{"out of time", 0, 0, []string{"capacity: stopped before 100/s: -max-time 0s"}, 0, true},
	} {
		var out bytes.Buffer
		tried := 0
		err := capacity(context.Background(), &out, []int{100, 200, 300, 400}, time.Millisecond, c.maxTime, filepath.Join(repoRoot, "docs/kubernetes.md"),
			func(rate int) (bool, []Verdict, error) {
				tried++
				return rate != c.failAt, latency, nil
			})
		if (err != nil) != c.wantErr || tried != c.tried {
			t.Errorf("%s: err %v, %d rates tried; want error %v, %d tried", c.name, err, tried, c.wantErr, c.tried)
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: no %q in:\n%s", c.name, w, out.String())
			}
		}
		if c.name == "a rate fails" && strings.Contains(out.String(), "or more") {
			t.Errorf("%s: said the capacity is above the rates tried", c.name)
		}
	}
}
