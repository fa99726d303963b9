package main

import (
	"strings"
	"testing"
	"time"
)

func TestTimelineAndPostmortem(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	j := &Journal{Experiment: "service2-down", Title: "service2 goes away", Stack: "local", Scale: 0.25, Verdict: Held,
		Start: at(0), End: at(100), RecoveredMS: 4000,
		Method:    []ActionResult{{Name: "service2 unreachable", Did: "make chaos-service2-down", Start: at(10), TookMS: 500, OK: true}},
		Rollbacks: []ActionResult{{Name: "reset", Did: "make chaos-reset", Start: at(60), TookMS: 1000, OK: true}},
		Probes: []ProbeJournal{
			{Name: "GET / answers 200", Role: "steady_state", Tolerance: "200", Before: &Phase{Held: true, Value: "200 in 3ms"}, After: &Phase{Held: true, Value: "200 in 2ms"}},
			{Name: "the breaker opens", Role: "hypothesis", Tolerance: "in [1, 2]", During: &Phase{Held: true, TookMS: 9500, Value: "2"}},
			{Name: "GET / fails fast", Role: "hypothesis", Tolerance: "503", During: &Phase{Held: true, TookMS: 200, Value: "503 in 2ms"}},
		}}
	alerts := []alertSeen{
		{At: at(5), Name: "Old", Severity: "ticket", Receiver: "ticket"}, // before the fault: not this experiment's
		{At: at(40), Name: "CircuitBreakerOpen", Severity: "ticket", Receiver: "ticket", RunbookURL: "docs/runbooks/CircuitBreakerOpen.md"},
		{At: at(45), Name: "Service1Availability", Severity: "page", Receiver: "page", RunbookURL: "docs/runbooks/Service1Availability.md"},
	}
	var got []string
	for _, e := range Timeline(j, alerts) {
		got = append(got, stamp(e.At)+" "+e.What)
	}
	want := []string{
		"2026-12-07T14:00:00.000Z experiment started: steady state checked",
		"2026-12-07T14:00:10.000Z fault in: service2 unreachable (make chaos-service2-down)",
		"2026-12-07T14:00:20.000Z hypothesis held", // the method's end (10.5 s) + the slowest probe (9.5 s)
		"2026-12-07T14:00:40.000Z first alert: CircuitBreakerOpen (ticket, to ticket)",
		"2026-12-07T14:00:45.000Z first page: Service1Availability",
		"2026-12-07T14:01:00.000Z rollback: reset (make chaos-reset)",
		"2026-12-07T14:01:05.000Z recovered: steady state again", // the rollback's end (61 s) + 4 s
		"2026-12-07T14:01:40.000Z experiment ended: held",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	md := Postmortem(j, evidence{Alerts: alerts[1:],
		Budgets: []budgetBurn{{SLO: "service1-availability", ErrorShare: 0.5, Burned: 0.5 * 90 / 2592000 / 0.005}, {SLO: "welcome-freshness", Err: "NaN (no events in the window)"}},
		Failed:  []string{"0123456789abcdef0123456789abcdef"}}, "http://localhost:16686")
	for _, w := range []string{
		"# Postmortem: service2-down",
		"| 2026-12-07T14:00:10.000Z | fault in: service2 unreachable (make chaos-service2-down) |",
		"| service1-availability | 50.00 % | 0.3472 % |",
		"| welcome-freshness | no data (NaN (no events in the window)) | - |",
		"- trace 0123456789abcdef0123456789abcdef: http://localhost:16686/trace/0123456789abcdef0123456789abcdef",
		"runbook docs/runbooks/Service1Availability.md",
		"- the breaker opens, during: held: 2 (want in [1, 2])",
		"- recovered 4.0 s after the rollbacks",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("the postmortem lacks %q:\n%s", w, md)
		}
	}
}
