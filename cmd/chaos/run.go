package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Verdicts, worst last.
const (
	Held        = "held"              // the steady state held, the hypothesis held, the steady state returned
	Disproved   = "disproved"         // a hypothesis probe deviated, or the steady state did not return
	NotSteady   = "not steady before" // nothing was injected: the stack was not in its steady state
	Interrupted = "interrupted"       // Ctrl-C or the timeout, rolled back
	RollbackBad = "rollback failed"   // the stack may still be broken: see byHand
)

// Journal is what a run leaves in the journal folder, one JSON file per
// experiment run.
type Journal struct {
	Experiment string         `json:"experiment"`
	Title      string         `json:"title"`
	File       string         `json:"file"`
	Stack      string         `json:"stack"` // compose, local
	Scale      float64        `json:"scale"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Verdict    string         `json:"verdict"`
	Deviations []string       `json:"deviations"` // why, when not held
	Probes     []ProbeJournal `json:"probes"`
	Method     []ActionResult `json:"method"`
	Rollbacks  []ActionResult `json:"rollbacks"`
	Annotation string         `json:"annotation"` // "grafana: id N" or why not
	// Recovered is how long the steady state took to return after the
	// rollbacks (ms; -1 when it did not).
	RecoveredMS int64 `json:"recovered_ms"`
}

// ProbeJournal is one probe in every phase it was measured in.
type ProbeJournal struct {
	Name      string `json:"name"`
	Role      string `json:"role"` // steady_state or hypothesis
	Tolerance string `json:"tolerance"`
	Before    *Phase `json:"before,omitempty"` // steady state, before the fault
	During    *Phase `json:"during,omitempty"` // hypothesis, while the fault is in
	After     *Phase `json:"after,omitempty"`  // steady state, after the rollbacks
}

// Phase is a probe's readings in one phase: whether it held (once, or at
// every check when throughout), how long it took, and its readings (the
// first and last few).
type Phase struct {
	Held     bool      `json:"held"`
	Deviated bool      `json:"deviated"`
	TookMS   int64     `json:"took_ms"` // from the phase's start to the reading that held
	Value    string    `json:"value"`   // the reading that held, or the last one
	Readings []Reading `json:"readings"`
}

// keep bounds a phase's readings in the journal.
const keep = 20

func (p *Phase) add(r Reading) {
	if len(p.Readings) == keep {
		// The first half stays (how it began), the rest slides.
		p.Readings = append(p.Readings[:keep/2], p.Readings[keep/2+1:]...)
	}
	p.Readings = append(p.Readings, r)
}

// runner runs experiments.
type runner struct {
	probe     *prober
	act       *actor
	annotate  *annotator
	stack     string
	journals  string        // folder
	warmup    time.Duration // how long the steady state may take to show before
	interval  time.Duration
	timeout   time.Duration // one experiment, all phases
	out       io.Writer
	annotated bool       // said once when Grafana is not there
	load      *loader    // nil without -load-rate
	witness   *witnesses // for the postmortems (nil: none)
}

// Run runs one experiment; the rollbacks run whatever happens. It returns
// the journal (written to the journal folder) and its path.
func (r *runner) Run(ctx context.Context, e *Experiment) (*Journal, string) {
	j := &Journal{Experiment: e.Name, Title: e.Title, File: e.File, Stack: r.stack, Scale: r.act.scale,
		Start: time.Now().UTC(), Deviations: []string{}, RecoveredMS: -1}
	fmt.Fprintf(r.out, "\n== %s: %s\n", e.Name, e.Title)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	id, err := r.annotate.start(ctx, e, j.Start)
	if err != nil {
		j.Annotation = "not annotated: " + err.Error()
		if !r.annotated {
			fmt.Fprintf(r.out, "   (no Grafana annotations: %v; make local has no Grafana, the journal has the times)\n", err)
			r.annotated = true
		}
	} else {
		j.Annotation = fmt.Sprintf("grafana annotation %d", id)
	}

	steady := make([]*ProbeJournal, len(e.SteadyState))
	for i, p := range e.SteadyState {
		steady[i] = &ProbeJournal{Name: p.Name, Role: "steady_state", Tolerance: p.tolerance()}
	}
	hyp := make([]*ProbeJournal, len(e.Hypothesis))
	for i, p := range e.Hypothesis {
		hyp[i] = &ProbeJournal{Name: p.Name, Role: "hypothesis", Tolerance: p.tolerance()}
	}

	// 1. The steady state, before.
	fmt.Fprintln(r.out, "   steady state, before:")
	before := r.untilHeld(ctx, e.SteadyState, r.warmup)
	for i, ph := range before {
		steady[i].Before = ph
		r.say(e.SteadyState[i], ph)
	}
	injected := false
	if ctx.Err() != nil {
		// Ctrl-C or the timeout before anything was injected: the
		// switch below says interrupted.
	} else if err := r.load.Err(); err != nil {
		j.Verdict = NotSteady
		j.Deviations = append(j.Deviations, "the load through service1 stopped: "+err.Error())
	} else if !allHeld(before) {
		j.Verdict = NotSteady
		for i, ph := range before {
			if !ph.Held {
				j.Deviations = append(j.Deviations, fmt.Sprintf("before: %s: %s (want %s)", e.SteadyState[i].Name, ph.Value, steady[i].Tolerance))
			}
		}
	} else {
		// 2. The method; 3. the hypothesis while the fault is in.
		injected = true
		fmt.Fprintln(r.out, "   method:")
		ok := true
		for _, a := range e.Method {
			res := r.act.do(ctx, a)
			j.Method = append(j.Method, res)
			r.sayAction(res)
			if !res.OK {
				ok = false
				j.Deviations = append(j.Deviations, "method: "+a.Name+": "+res.Error)
				break
			}
		}
		if ok {
			fmt.Fprintln(r.out, "   hypothesis, while the fault is in:")
			during := r.during(ctx, e.Hypothesis, e.injectFor(r.act.scale))
			for i, ph := range during {
				hyp[i].During = ph
				r.say(e.Hypothesis[i], ph)
				if !ph.Held {
					j.Deviations = append(j.Deviations, fmt.Sprintf("during: %s: %s (want %s)", e.Hypothesis[i].Name, ph.Value, hyp[i].Tolerance))
				}
			}
		}
	}

	// 4. The rollbacks, always (on a context of their own: Ctrl-C and the
	// timeout have ended ctx).
	rollbackFailed := false
	if injected {
		fmt.Fprintln(r.out, "   rollbacks:")
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		for _, a := range e.Rollbacks {
			res := r.act.do(rctx, a)
			j.Rollbacks = append(j.Rollbacks, res)
			r.sayAction(res)
			if !res.OK {
				rollbackFailed = true
			}
		}
		rcancel()
	}

	// 5. The steady state returns.
	if injected && !rollbackFailed && ctx.Err() == nil {
		fmt.Fprintln(r.out, "   steady state, after:")
		start := time.Now()
		after := r.untilHeld(ctx, e.SteadyState, e.Durations.Recover.D())
		for i, ph := range after {
			steady[i].After = ph
			r.say(e.SteadyState[i], ph)
			if !ph.Held {
				j.Deviations = append(j.Deviations, fmt.Sprintf("after: %s: %s (want %s within %v)", e.SteadyState[i].Name, ph.Value, steady[i].Tolerance, e.Durations.Recover.D()))
			}
		}
		if allHeld(after) {
			j.RecoveredMS = time.Since(start).Milliseconds()
		}
	}

	switch {
	case rollbackFailed:
		j.Verdict = RollbackBad
		for _, res := range j.Rollbacks {
			if !res.OK {
				j.Deviations = append(j.Deviations, "rollback: "+res.Name+": "+res.Error)
			}
		}
	case ctx.Err() != nil && j.Verdict == "":
		j.Verdict = Interrupted
		j.Deviations = append(j.Deviations, "interrupted: "+context.Cause(ctx).Error())
	case j.Verdict != "":
	case len(j.Deviations) > 0:
		j.Verdict = Disproved
	default:
		j.Verdict = Held
	}
	j.End = time.Now().UTC()
	for _, p := range append(steady, hyp...) {
		j.Probes = append(j.Probes, *p)
	}
	if id != 0 {
		if err := r.annotate.end(context.WithoutCancel(ctx), id, e, j.End, j.Verdict); err != nil {
			j.Annotation += "; its end not annotated: " + err.Error()
		}
	}
	path := r.write(j)
	r.verdict(j, e, path)
	fmt.Fprintf(r.out, "   postmortem: %s\n", r.writePostmortem(ctx, j, path))
	return j, path
}

// metricsDelay is how late Prometheus can see a change: the services
// sample their gauges every 5 s, the statsd client flushes every 2 s, and
// Prometheus scrapes every 5 s, 12 s at worst; then come the seconds a
// fault takes to show (a breaker opens after its failures) and a margin for
// a busy machine. On an idle make local, service2-latency's open breaker
// reached Prometheus 9 to 10 s after the fault went in.
const metricsDelay = 20 * time.Second

// injectFor is how long the fault stays in at most: the file's duration
// scaled, but never under metricsDelay when the hypothesis reads
// Prometheus (-scale would make it unobservable, not shorter).
func (e *Experiment) injectFor(scale float64) time.Duration {
	d := scaled(e.Durations.Inject.D(), scale)
	for _, p := range e.Hypothesis {
		if (p.SLO != nil || p.Prometheus != nil) && d < metricsDelay {
			return min(metricsDelay, e.Durations.Inject.D())
		}
	}
	return d
}

// untilHeld measures the probes every interval until all have held at the
// same check, or limit has passed; each phase keeps the last check's
// reading (the one that held).
func (r *runner) untilHeld(ctx context.Context, probes []Probe, limit time.Duration) []*Phase {
	phases := make([]*Phase, len(probes))
	for i := range phases {
		phases[i] = &Phase{}
	}
	start := time.Now()
	for {
		all := true
		for i, p := range probes {
			rd := r.probe.measure(ctx, p)
			ph := phases[i]
			ph.add(rd)
			ph.Held, ph.Value, ph.TookMS = rd.Held, rd.Value, time.Since(start).Milliseconds()
			all = all && rd.Held
		}
		if all || time.Since(start) >= limit || sleep(ctx, r.interval) != nil {
			for _, ph := range phases {
				ph.Deviated = !ph.Held
			}
			return phases
		}
	}
}

// during measures the hypothesis while the fault is in, for d at most: a
// probe holds once it has held (throughout: when it held at every check).
// It ends early when every probe has held and none is throughout.
func (r *runner) during(ctx context.Context, probes []Probe, d time.Duration) []*Phase {
	phases := make([]*Phase, len(probes))
	done := make([]bool, len(probes))
	for i, p := range probes {
		phases[i] = &Phase{Held: p.Throughout}
	}
	throughout := false
	for _, p := range probes {
		throughout = throughout || p.Throughout
	}
	start := time.Now()
	for {
		all := true
		for i, p := range probes {
			ph := phases[i]
			if done[i] {
				continue
			}
			rd := r.probe.measure(ctx, p)
			ph.add(rd)
			switch {
			case p.Throughout && !rd.Held:
				ph.Held, ph.Value, ph.TookMS, done[i] = false, rd.Value, time.Since(start).Milliseconds(), true
			case p.Throughout:
				ph.Value = rd.Value
			case rd.Held:
				ph.Held, ph.Value, ph.TookMS, done[i] = true, rd.Value, time.Since(start).Milliseconds(), true
			default:
				ph.Value = rd.Value
				all = false
			}
		}
		if (all && !throughout) || time.Since(start) >= d || sleep(ctx, r.interval) != nil {
			break
		}
	}
	for i, p := range probes {
		ph := phases[i]
		if p.Throughout && ph.Held {
			ph.TookMS = time.Since(start).Milliseconds()
		}
		ph.Deviated = !ph.Held
	}
	return phases
}

func allHeld(phases []*Phase) bool {
	for _, p := range phases {
		if !p.Held {
			return false
		}
	}
	return true
}

func (r *runner) say(p Probe, ph *Phase) {
	mark := "ok "
	if !ph.Held {
		mark = "NO "
	}
	how := fmt.Sprintf("after %.1fs", float64(ph.TookMS)/1000)
	if p.Throughout {
		how = fmt.Sprintf("throughout %.1fs", float64(ph.TookMS)/1000)
	}
	fmt.Fprintf(r.out, "     %s %-44s %s (want %s) %s\n", mark, p.Name, ph.Value, p.tolerance(), how)
}

func (r *runner) sayAction(a ActionResult) {
	if a.OK {
		fmt.Fprintf(r.out, "     ok  %-44s %s (%dms)\n", a.Name, a.Did, a.TookMS)
		return
	}
	fmt.Fprintf(r.out, "     NO  %-44s %s: %s\n", a.Name, a.Did, a.Error)
}

// write keeps the journal as JSON; it returns the path, or why not.
func (r *runner) write(j *Journal) string {
	if err := os.MkdirAll(r.journals, 0o755); err != nil {
		return "(journal not written: " + err.Error() + ")"
	}
	path := filepath.Join(r.journals, j.Start.Format("20060102-150405")+"-"+j.Experiment+".json")
	b, _ := json.MarshalIndent(j, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "(journal not written: " + err.Error() + ")"
	}
	return path
}

// verdict prints the human verdict.
func (r *runner) verdict(j *Journal, e *Experiment, path string) {
	fmt.Fprintf(r.out, "   verdict: %s", strings.ToUpper(j.Verdict))
	switch j.Verdict {
	case Held:
		fmt.Fprintf(r.out, ": %s; steady again after %.1fs\n", figures(j), float64(j.RecoveredMS)/1000)
	default:
		fmt.Fprintln(r.out)
		for _, d := range j.Deviations {
			fmt.Fprintln(r.out, "     - "+d)
		}
	}
	if j.Verdict == RollbackBad {
		fmt.Fprintln(r.out, "   THE STACK MAY STILL BE BROKEN. What the method did:")
		for _, m := range j.Method {
			fmt.Fprintln(r.out, "     - "+m.Did)
		}
		fmt.Fprintln(r.out, "   Undo it by hand:")
		for _, h := range byHand(r.act.toxiproxy) {
			fmt.Fprintln(r.out, "     "+h)
		}
	}
	fmt.Fprintf(r.out, "   journal: %s\n", path)
}

// figures are the key figures of a run: each hypothesis probe's value when
// it held.
func figures(j *Journal) string {
	var f []string
	for _, p := range j.Probes {
		if p.During != nil && p.During.Held {
			f = append(f, fmt.Sprintf("%s: %s", p.Name, p.During.Value))
		}
	}
	return strings.Join(f, "; ")
}
