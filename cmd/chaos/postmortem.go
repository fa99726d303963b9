package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// The postmortem: every experiment's journal gets a markdown page beside
// it (the same name, .md), written from the journal, the alerts alertlog
// received while it ran, the SLO series in Prometheus, and the failed
// requests' lines in Loki, which carry their trace IDs.

// witnesses are where the postmortem reads what happened besides the
// journal: alertlog, Loki and Jaeger (for the links), on the stacks'
// shared ports.
type witnesses struct {
	alertlog, loki, jaeger string // base URLs
	client                 *http.Client
}

// Event is one line of a postmortem's timeline.
type Event struct {
	At   time.Time
	What string
}

// alertSeen is one alert alertlog received firing.
type alertSeen struct {
	At                       time.Time
	Name, Severity, Receiver string
	RunbookURL               string
}

// budgetBurn is what one SLO lost during the experiment.
type budgetBurn struct {
	SLO        string
	ErrorShare float64 // of the SLO's events, over the window
	Burned     float64 // of the 30-day error budget, had the traffic gone on like this
	Err        string  // why there is no figure
}

// evidence is what the postmortem says beyond the journal.
type evidence struct {
	Alerts  []alertSeen
	Budgets []budgetBurn
	Failed  []string // trace IDs of failed requests, at most two
	Missing []string // what could not be read, and why
}

// faultIn is when the fault went in: the method's first action (the
// journal's start when there was none).
func faultIn(j *Journal) time.Time {
	if len(j.Method) > 0 {
		return j.Method[0].Start
	}
	return j.Start
}

// Timeline is the experiment's timeline from its journal and the alerts:
// start, fault in, first alert, first page, the hypothesis's verdict, the
// rollbacks, recovered, end. In time order.
func Timeline(j *Journal, alerts []alertSeen) []Event {
	ev := []Event{{j.Start, "experiment started: steady state checked"}}
	in := faultIn(j)
	methodEnd := in
	for _, m := range j.Method {
		ev = append(ev, Event{m.Start, "fault in: " + m.Name + " (" + m.Did + ")"})
		methodEnd = m.Start.Add(time.Duration(m.TookMS) * time.Millisecond)
	}
	var firstAlert, firstPage *alertSeen
	for i, a := range alerts {
		if a.At.Before(in) {
			continue
		}
		if firstAlert == nil {
			firstAlert = &alerts[i]
		}
		if firstPage == nil && a.Severity == "page" {
			firstPage = &alerts[i]
		}
	}
	if firstAlert != nil {
		ev = append(ev, Event{firstAlert.At, fmt.Sprintf("first alert: %s (%s, to %s)", firstAlert.Name, firstAlert.Severity, firstAlert.Receiver)})
	}
	if firstPage != nil && firstPage != firstAlert {
		ev = append(ev, Event{firstPage.At, fmt.Sprintf("first page: %s", firstPage.Name)})
	}
	var verdictMS int64 = -1
	held := true
	for _, p := range j.Probes {
		if p.During != nil {
			verdictMS = max(verdictMS, p.During.TookMS)
			held = held && p.During.Held
		}
	}
	if verdictMS >= 0 {
		what := "hypothesis held"
		if !held {
			what = "hypothesis disproved"
		}
		ev = append(ev, Event{methodEnd.Add(time.Duration(verdictMS) * time.Millisecond), what})
	}
	rollbackEnd := time.Time{}
	for _, r := range j.Rollbacks {
		ev = append(ev, Event{r.Start, "rollback: " + r.Name + " (" + r.Did + ")"})
		rollbackEnd = r.Start.Add(time.Duration(r.TookMS) * time.Millisecond)
	}
	if j.RecoveredMS >= 0 && !rollbackEnd.IsZero() {
		ev = append(ev, Event{rollbackEnd.Add(time.Duration(j.RecoveredMS) * time.Millisecond), "recovered: steady state again"})
	}
	ev = append(ev, Event{j.End, "experiment ended: " + j.Verdict})
	slices.SortStableFunc(ev, func(a, b Event) int { return a.At.Compare(b.At) })
	return ev
}

// gather reads the evidence for j; what cannot be read is said, not fatal.
func (w *witnesses) gather(ctx context.Context, j *Journal, pr *prober) evidence {
	var e evidence
	in := faultIn(j)
	if alerts, err := w.alerts(ctx, in, j.End); err != nil {
		e.Missing = append(e.Missing, "alerts: "+err.Error())
	} else {
		e.Alerts = alerts
	}
	window := j.End.Sub(in).Round(time.Second) + time.Second
	for _, name := range sloNames() {
		s := sloSpecs[name]
		b := budgetBurn{SLO: name}
		share, err := pr.promValue(ctx, (&SLOProbe{Name: name, Window: Duration(window)}).query())
		if err != nil {
			b.Err = err.Error()
		} else {
			b.ErrorShare = share
			b.Burned = share * window.Seconds() / (30 * 24 * time.Hour).Seconds() / (1 - s.Objective/100)
		}
		e.Budgets = append(e.Budgets, b)
	}
	if ids, err := w.failed(ctx, in, j.End); err != nil {
		e.Missing = append(e.Missing, "failed requests: "+err.Error())
	} else {
		e.Failed = ids
	}
	return e
}

// alerts are the firing alerts alertlog received in [from, to].
func (w *witnesses) alerts(ctx context.Context, from, to time.Time) ([]alertSeen, error) {
	var ns []struct {
		Receiver string    `json:"receiver"`
		Received time.Time `json:"received"`
		Alerts   []struct {
			Status      string            `json:"status"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"alerts"`
	}
	if err := w.get(ctx, w.alertlog+"/alerts", &ns); err != nil {
		return nil, err
	}
	var out []alertSeen
	for _, n := range ns {
		if n.Received.Before(from) || n.Received.After(to) {
			continue
		}
		for _, a := range n.Alerts {
			if a.Status == "firing" {
				out = append(out, alertSeen{At: n.Received, Name: a.Labels["alertname"], Severity: a.Labels["severity"],
					Receiver: n.Receiver, RunbookURL: a.Annotations["runbook_url"]})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b alertSeen) int { return a.At.Compare(b.At) })
	return out, nil
}

// failed returns the trace IDs of up to two of service1's failed requests
// (5xx, the honeypot aside) in [from, to], from their access lines.
func (w *witnesses) failed(ctx context.Context, from, to time.Time) ([]string, error) {
	v := url.Values{"query": {`{service_name="service1"} | status >= 500 | route!="/honeypot"`}, "limit": {"100"},
		"start": {fmt.Sprint(from.UnixNano())}, "end": {fmt.Sprint(to.Add(10 * time.Second).UnixNano())}, "direction": {"forward"}}
	var r struct {
		Data struct {
			Result []struct {
				Stream map[string]string `json:"stream"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := w.get(ctx, w.loki+"/loki/api/v1/query_range?"+v.Encode(), &r); err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range r.Data.Result {
		if id := s.Stream["trace_id"]; id != "" && !slices.Contains(ids, id) && len(ids) < 2 {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (w *witnesses) get(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// stamp is how the postmortem writes a time: UTC, to the millisecond.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Postmortem is the markdown postmortem of j.
func Postmortem(j *Journal, e evidence, jaeger string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Postmortem: %s\n\n%s\n\n", j.Experiment, j.Title)
	fmt.Fprintf(&b, "- **Verdict:** %s\n- **Stack:** %s, durations × %g\n- **Journal:** %s\n\n", strings.ToUpper(j.Verdict), j.Stack, j.Scale,
		j.Start.Format("20060102-150405")+"-"+j.Experiment+".json")

	b.WriteString("## Timeline\n\n| time (UTC) | event |\n|---|---|\n")
	for _, ev := range Timeline(j, e.Alerts) {
		fmt.Fprintf(&b, "| %s | %s |\n", stamp(ev.At), ev.What)
	}
	if len(e.Alerts) == 0 {
		b.WriteString("\nNo alert fired while it ran.\n")
	} else {
		b.WriteString("\nAlerts received (alertlog):\n\n")
		for _, a := range e.Alerts {
			fmt.Fprintf(&b, "- %s %s (%s, to %s): runbook %s\n", stamp(a.At), a.Name, a.Severity, a.Receiver, cmp.Or(a.RunbookURL, "none"))
		}
	}

	b.WriteString("\n## Error budget burned\n\nEach SLO's share of bad events from the fault to the end, and what that costs its 30-day error budget had the traffic gone on like this.\n\n| SLO | bad events | 30-day budget burned |\n|---|---|---|\n")
	for _, s := range e.Budgets {
		if s.Err != "" {
			fmt.Fprintf(&b, "| %s | no data (%s) | - |\n", s.SLO, s.Err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %.2f %% | %.4f %% |\n", s.SLO, 100*s.ErrorShare, 100*s.Burned)
	}

	b.WriteString("\n## Failed requests\n\n")
	if len(e.Failed) == 0 {
		b.WriteString("No request to service1 failed while it ran (no 5xx access line in the logs).\n")
	}
	for _, id := range e.Failed {
		fmt.Fprintf(&b, "- trace %s: %s/trace/%s\n", id, jaeger, id)
	}

	b.WriteString("\n## What held and what did not\n\n")
	for _, p := range j.Probes {
		for _, ph := range []struct {
			name string
			p    *Phase
		}{{"before", p.Before}, {"during", p.During}, {"after", p.After}} {
			if ph.p == nil {
				continue
			}
			mark := "held"
			if !ph.p.Held {
				mark = "DID NOT HOLD"
			}
			fmt.Fprintf(&b, "- %s, %s: %s: %s (want %s)\n", p.Name, ph.name, mark, ph.p.Value, p.Tolerance)
		}
	}
	for _, d := range j.Deviations {
		fmt.Fprintf(&b, "- deviation: %s\n", d)
	}
	if j.RecoveredMS >= 0 {
		fmt.Fprintf(&b, "- recovered %.1f s after the rollbacks\n", float64(j.RecoveredMS)/1000)
	} else {
		b.WriteString("- the steady state did not return\n")
	}
	if len(e.Missing) > 0 {
		b.WriteString("\n## Not read\n\n")
		for _, m := range e.Missing {
			fmt.Fprintf(&b, "- %s\n", m)
		}
	}
	return b.String()
}

// writePostmortem writes the postmortem beside the journal at path.
func (r *runner) writePostmortem(ctx context.Context, j *Journal, path string) string {
	if !strings.HasSuffix(path, ".json") || r.witness == nil {
		return "(no postmortem: no journal)"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	md := strings.TrimSuffix(path, ".json") + ".md"
	text := Postmortem(j, r.witness.gather(ctx, j, r.probe), r.witness.jaeger)
	if err := os.WriteFile(md, []byte(text), 0o644); err != nil {
		return "(postmortem not written: " + err.Error() + ")"
	}
	return md
}
