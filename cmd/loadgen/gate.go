// The release gate (-gate): after the load, a verdict for each SLO over
// the run, from the SLO recording rules Prometheus has loaded (Sloth's, from
// deploy/slo): each SLO's slo:sli_error:ratio_rate5m rule is evaluated
// again over the run's window instead of 5 minutes, so the gate judges
// exactly what the recording rules and their alerts compute, over exactly
// the run. An SLO passes when its share of bad events stays within its
// error budget (a burn rate of 1 or less: the 30-day budget would last the
// 30 days); a latency SLO also shows the p99 against its threshold. With
// -capacity, the gate runs at rising rates until one fails, within
// -max-time, and compares the highest rate that passed with the capacity
// table of docs/kubernetes.md.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/failready/failready/devstack/promapi"
)

// sloRule is one SLO as its recording rules define it.
type sloRule struct {
	Name      string
	Objective float64 // 0.995
	Errors    string  // the 5m rule's numerator, with [5m]
	Total     string  // its denominator
}

// budgetPeriod is the SLOs' period (Sloth's default, and deploy/slo's).
const budgetPeriod = 30 * 24 * time.Hour

// rulesAnswer is the part of /api/v1/rules the gate reads.
type rulesAnswer struct {
	Status string `json:"status"`
	Data   struct {
		Groups []struct {
			Rules []struct {
				Name   string            `json:"name"`
				Query  string            `json:"query"`
				Labels map[string]string `json:"labels"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"data"`
}

var objectiveExpr = regexp.MustCompile(`^vector\(([0-9.]+)\)$`)

// sloRules reads the SLOs from the recording rules in a's answer.
func sloRules(a rulesAnswer) ([]sloRule, error) {
	by := map[string]*sloRule{}
	get := func(name string) *sloRule {
		if by[name] == nil {
			by[name] = &sloRule{Name: name}
		}
		return by[name]
	}
	for _, g := range a.Data.Groups {
		for _, r := range g.Rules {
			slo := r.Labels["sloth_slo"]
			if slo == "" {
				continue
			}
			switch r.Name {
			case "slo:sli_error:ratio_rate5m":
				num, den, ok := splitDivision(r.Query)
				if !ok {
					return nil, fmt.Errorf("the recording rule %s of %s is not errors / total: %q", r.Name, slo, r.Query)
				}
				get(slo).Errors, get(slo).Total = strings.TrimSpace(num), strings.TrimSpace(den)
			case "slo:objective:ratio":
				m := objectiveExpr.FindStringSubmatch(strings.TrimSpace(r.Query))
				if m == nil {
					return nil, fmt.Errorf("the objective of %s is not vector(<ratio>): %q", slo, r.Query)
				}
				get(slo).Objective, _ = strconv.ParseFloat(m[1], 64)
			}
		}
	}
	var out []sloRule
	for _, s := range by {
		if s.Errors == "" || s.Objective <= 0 || s.Objective >= 1 {
			return nil, fmt.Errorf("SLO %s: no 5m SLI rule or no objective among Prometheus's rules", s.Name)
		}
		out = append(out, *s)
	}
	if len(out) == 0 {
		return nil, errors.New("no SLO recording rules (slo:sli_error:ratio_rate5m) in Prometheus: is deploy/prometheus/rules loaded?")
	}
	slices.SortFunc(out, func(a, b sloRule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// splitDivision splits a PromQL expression at its outermost division
// (errors / total), outside brackets and quoted strings: Prometheus's rules
// API answers each rule's expression as it prints it, not as written.
func splitDivision(q string) (num, den string, ok bool) {
	depth := 0
	var quote rune
	for i, r := range q {
		switch {
		case quote != 0:
			if r == quote && (i == 0 || q[i-1] != '\\') {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			depth++
		case r == ')' || r == ']' || r == '}':
			depth--
		case r == '/' && depth == 0:
			return strings.TrimSpace(q[:i]), strings.TrimSpace(q[i+1:]), true
		}
	}
	return "", "", false
}

// window puts w in place of the rule's 5 m.
func window(q string, w time.Duration) string {
	return strings.ReplaceAll(q, "[5m]", "["+strconv.Itoa(int(w.Seconds()))+"s]")
}

// bucketSel finds a latency SLI's bucket series, whose le matcher is its
// threshold.
var (
	bucketSel = regexp.MustCompile(`(\w+_bucket)\{([^}]*)\}`)
	leMatcher = regexp.MustCompile(`^\s*le\s*=~?\s*"([0-9.]+)`)
)

// threshold returns the SLI's histogram, its selector without le, and the
// le (0 when the SLI reads no bucket).
func threshold(q string) (name, sel string, le float64) {
	m := bucketSel.FindStringSubmatch(q)
	if m == nil {
		return "", "", 0
	}
	var keep []string
	for _, matcher := range strings.Split(m[2], ",") { // no value here holds a comma
		if l := leMatcher.FindStringSubmatch(matcher); l != nil {
			le, _ = strconv.ParseFloat(l[1], 64)
			continue
		}
		keep = append(keep, strings.TrimSpace(matcher))
	}
	return m[1], strings.Join(keep, ", "), le
}

// Verdict is one SLO's over a run.
type Verdict struct {
	SLO        string
	Pass       bool
	ErrorShare float64 // of the events over the window
	Events     float64 // about: Prometheus's rate over the window, times the window
	BurnRate   float64 // ErrorShare over the error budget
	Burned     float64 // the share of the 30-day budget the window spent
	P99        float64 // seconds, for a latency or freshness SLO; NaN otherwise
	Threshold  float64 // its bucket bound, seconds
	Objective  float64
	Err        string // why there is no verdict (no data): a FAIL
}

// judge evaluates each SLO over the window ending now.
func judge(ctx context.Context, c *http.Client, prom string, slos []sloRule, w time.Duration) []Verdict {
	var out []Verdict
	for _, s := range slos {
		v := Verdict{SLO: s.Name, Objective: s.Objective, P99: math.NaN()}
		errs, err1 := promapi.Value(ctx, c, prom, "sum("+window(s.Errors, w)+") * "+strconv.Itoa(int(w.Seconds())))
		total, err2 := promapi.Value(ctx, c, prom, "sum("+window(s.Total, w)+") * "+strconv.Itoa(int(w.Seconds())))
		switch {
		case err1 != nil || err2 != nil:
			v.Err = fmt.Sprint(errors.Join(err1, err2))
		case math.IsNaN(total) || total <= 0:
			v.Err = "no events over the run"
		default:
			v.Events = total
			v.ErrorShare = math.Max(0, errs/total)
			v.BurnRate = v.ErrorShare / (1 - s.Objective)
			v.Burned = v.BurnRate * w.Seconds() / budgetPeriod.Seconds()
			v.Pass = v.BurnRate <= 1
		}
		if name, sel, le := threshold(s.Errors); le > 0 {
			v.Threshold = le
			q := fmt.Sprintf("histogram_quantile(0.99, sum by (le) (rate(%s{%s}[%ds])))", name, sel, int(w.Seconds()))
			if p99, err := promapi.Value(ctx, c, prom, q); err == nil {
				v.P99 = p99
			}
		}
		out = append(out, v)
	}
	return out
}

// printVerdicts writes one line per SLO and says whether all passed.
func printVerdicts(w io.Writer, vs []Verdict) bool {
	pass := true
	for _, v := range vs {
		word := "PASS"
		if !v.Pass {
			word, pass = "FAIL", false
		}
		if v.Err != "" {
			fmt.Fprintf(w, "%s %-22s no verdict: %s\n", word, v.SLO, v.Err)
			continue
		}
		line := fmt.Sprintf("%s %-22s bad %.2f %% of about %.0f events, budget %.2f %% (objective %s %%): burn rate %.2f×, %.4f %% of the 30-day budget",
			word, v.SLO, 100*v.ErrorShare, v.Events, 100*(1-v.Objective), strconv.FormatFloat(100*v.Objective, 'f', -1, 64), v.BurnRate, 100*v.Burned)
		if v.Threshold > 0 {
			line += fmt.Sprintf("; p99 %s against %s", seconds(v.P99), seconds(v.Threshold))
		}
		fmt.Fprintln(w, line)
	}
	return pass
}

func seconds(s float64) string {
	switch {
	case math.IsNaN(s) || math.IsInf(s, 0):
		return "n/a"
	case s < 1:
		return strconv.FormatFloat(s*1000, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(s, 'f', 2, 64) + " s"
}

// gate reads the SLO rules, runs the load through attack, waits settle,
// then judges the run: one verdict per SLO, and one for the load's own
// answers. It returns whether every verdict passed.
func gate(ctx context.Context, out io.Writer, prom string, settle time.Duration, attack func() (*Summary, error)) (bool, []Verdict, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	var rules rulesAnswer
	if err := promapi.Get(ctx, c, prom+"/api/v1/rules?type=record", &rules); err != nil {
		return false, nil, fmt.Errorf("-gate: the SLO rules: %w", err)
	}
	slos, err := sloRules(rules)
	if err != nil {
		return false, nil, fmt.Errorf("-gate: %w", err)
	}
	start := time.Now()
	sum, err := attack()
	if err != nil {
		return false, nil, err
	}
	// The last answers reach Prometheus (a scrape every 5 s), the last
	// tasks are done (freshness is counted when a task ends).
	select {
	case <-ctx.Done():
		return false, nil, ctx.Err()
	case <-time.After(settle):
	}
	w := time.Since(start).Round(time.Second) + time.Second
	fmt.Fprintf(out, "\nrelease gate: the SLOs of Prometheus's recording rules (%s), over the run and %s after it (%s)\n", prom, settle, w)
	vs := judge(ctx, c, prom, slos, w)
	pass := printVerdicts(out, vs)
	ok, line := judgeLoad(sum, slos)
	fmt.Fprintln(out, line)
	return pass && ok, vs, nil
}

// judgeLoad is the verdict on what the load itself saw. The SLOs cannot
// see everything a release must not do: a 429 (the rate limit) is no
// error in any SLI, and a machine that could not send the rate judged a
// smaller one. So the load passes when it sent at least 95 % of what its
// rate and duration ask for, and its unexpected answers stay within the
// tightest SLO's error budget.
func judgeLoad(s *Summary, slos []sloRule) (bool, string) {
	budget := 1.0
	for _, r := range slos {
		budget = math.Min(budget, 1-r.Objective)
	}
	share := 0.0
	if s.Requests > 0 {
		share = float64(s.Unexpected) / float64(s.Requests)
	}
	sent := s.Requests >= uint64(math.Ceil(0.95*float64(s.Planned)))
	ok := sent && s.Requests > 0 && share <= budget
	word := "PASS"
	if !ok {
		word = "FAIL"
	}
	line := fmt.Sprintf("%s %-22s %d of %d requests sent at %d/s, %d answers unexpected (%.2f %%, at most %.2f %%: the tightest SLO's budget)",
		word, "load", s.Requests, s.Planned, s.Rate, s.Unexpected, 100*share, 100*budget)
	if !sent {
		line += fmt.Sprintf("; this machine sent under 95 %% of %d/s, so the SLOs judged a smaller load", s.Rate)
	}
	if s.Unexpected > 0 {
		line += "; by status (0: no answer): " + byStatus(s.UnexpectedBy)
	}
	if n := s.UnexpectedBy["429"]; n > 0 && !ok {
		line += fmt.Sprintf("; %d were service1's rate limit (429, in no SLI): to judge the stack's capacity rather than its limit, start it with RATE_LIMIT_PER_CLIENT and RATE_LIMIT_GLOBAL raised", n)
	}
	return ok, line
}

// capacityRow is one row of docs/kubernetes.md's capacity table.
type capacityRow struct {
	Rate   int
	P99ms  float64
	Unexpc bool // the row reports unexpected answers
}

var capacityLine = regexp.MustCompile(`(?m)^\| (\d+) \| ([0-9.]+)( \([^)]*unexpected[^)]*\))? \|`)

// capacityTable reads the rate and p99 rows of the capacity table.
func capacityTable(doc string) []capacityRow {
	var rows []capacityRow
	for _, m := range capacityLine.FindAllStringSubmatch(doc, -1) {
		r, _ := strconv.Atoi(m[1])
		p, _ := strconv.ParseFloat(m[2], 64)
		rows = append(rows, capacityRow{r, p, m[3] != ""})
	}
	return rows
}

// tableKnee is the highest rate of the table within the latency threshold
// (seconds) and without unexpected answers.
func tableKnee(rows []capacityRow, threshold float64) (capacityRow, bool) {
	var best capacityRow
	found := false
	for _, r := range rows {
		if r.P99ms <= threshold*1000 && !r.Unexpc && r.Rate > best.Rate {
			best, found = r, true
		}
	}
	return best, found
}

// capacity runs the gate at each rate in turn, within maxTime, until one
// fails; it reports the highest that passed beside the table's knee.
func capacity(ctx context.Context, out io.Writer, rates []int, step, maxTime time.Duration, table string, run func(rate int) (bool, []Verdict, error)) error {
	deadline := time.Now().Add(maxTime)
	best, threshold, failed := 0, 0.0, false
	for _, r := range rates {
		if time.Now().Add(step).After(deadline) {
			fmt.Fprintf(out, "\ncapacity: stopped before %d/s: -max-time %s\n", r, maxTime)
			break
		}
		fmt.Fprintf(out, "\n== capacity: %d/s for %s\n", r, step)
		pass, vs, err := run(r)
		if err != nil {
			return err
		}
		for _, v := range vs {
			threshold = math.Max(threshold, thresholdIf(v, "latency"))
		}
		if !pass {
			fmt.Fprintf(out, "\ncapacity: %d/s fails\n", r)
			failed = true
			break
		}
		best = r
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "capacity: %d/s is the highest rate tried that passes every SLO, with the load's answers as a healthy stack gives them\n", best)
	if !failed && best == rates[len(rates)-1] {
		fmt.Fprintf(out, "capacity: every rate tried passed, so the capacity is %d/s or more: try higher -rates\n", best)
	}
	if table != "" {
		b, err := os.ReadFile(table)
		if err != nil {
			return err
		}
		if knee, ok := tableKnee(capacityTable(string(b)), threshold); ok && threshold > 0 {
			fmt.Fprintf(out, "capacity: %s's table: %d/s within the latency objective (p99 %.1f ms, against %s), one replica per service with GOMAXPROCS=1\n",
				table, knee.Rate, knee.P99ms, seconds(threshold))
		}
	}
	if best == 0 {
		return errors.New("capacity: no rate passed")
	}
	return nil
}

// thresholdIf is v's latency threshold when its SLO's name says latency.
func thresholdIf(v Verdict, kind string) float64 {
	if strings.Contains(v.SLO, kind) {
		return v.Threshold
	}
	return 0
}
