//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWalkthroughs runs walkthroughs 1 to 7 of docs/walkthroughs.md as a
// reader does: `make local` on compose's ports with its default state
// folder, then `make walkthrough-logging`, -metrics, -tracing, -chaos,
// -logs-pipeline, -worker and -kubernetes (its native steps), whose scripts run the walkthroughs' own commands (curl
// localhost:8000, scripts/logs, make chaos-*, make load, Jaeger's,
// Prometheus's and Loki's APIs) and check what the walkthroughs say the
// reader sees.
func TestWalkthroughs(t *testing.T) {
	buildLocal(t) // skips without MySQL
	for _, bin := range []string{"STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "OTELCOL_BIN", "JAEGER_BIN", "NATS_SERVER_BIN"} {
		toolBin(t, bin)
	}
	// This machine runs a NATS of its own on 4222: make local's moves
	// aside, as make local's error says to.
	cmd := exec.Command("make", "--no-print-directory", "local", "LOCAL_FLAGS=-quiet -nats 127.0.0.1:0")
	cmd.Dir = repoRoot
	startLocal(t, cmd)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("make local did not stop within 60 s of SIGTERM")
		}
	}()
	for _, w := range []string{"logging", "metrics", "tracing", "chaos", "logs-pipeline", "worker", "kubernetes"} {
		t.Run(w, func(t *testing.T) {
			limit := 3 * time.Minute
			if w == "chaos" {
				limit = 10 * time.Minute // the game day: ten experiments
			}
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			start := time.Now()
			cmd := exec.CommandContext(ctx, "make", "-C", repoRoot, "--no-print-directory", "walkthrough-"+w)
			// The experiments with their faults a quarter as long: the
			// same code, the same hypotheses.
			cmd.Env = append(os.Environ(), "CHAOS_FLAGS=-scale 0.25")
			out, err := cmd.CombinedOutput()
			if err != nil {
				lines := strings.Split(string(out), "\n")
				if len(lines) > 80 {
					lines = lines[len(lines)-80:]
				}
				t.Fatalf("make walkthrough-%s: %v\n%s", w, err, strings.Join(lines, "\n"))
			}
			if !strings.Contains(string(out), "walkthrough: all steps passed") {
				t.Fatalf("make walkthrough-%s ended without its last line:\n%s", w, out)
			}
			t.Logf("walkthrough %s passed in %s", w, time.Since(start).Round(time.Second))
			if w == "chaos" {
				t.Log(gameDayTable(string(out)))
				checkJournals(t, start)
			}
		})
	}
	if t.Failed() {
		if b, err := os.ReadFile(repoRoot + "/.cache/local/logs/local.log"); err == nil {
			t.Logf("the runner's own log:\n%s", b)
		}
	}
}

// gameDayTable is the table make gameday ends with.
func gameDayTable(out string) string {
	if i := strings.LastIndex(out, "\ngame day:"); i >= 0 {
		return out[i:]
	}
	return "(no table)"
}

// journalPhase is a probe's phase in a journal.
type journalPhase struct {
	Held     bool              `json:"held"`
	Readings []json.RawMessage `json:"readings"`
}

// checkJournals: the game day left one journal per experiment, each in the
// format docs/chaos.md documents, each with the verdict held, every probe
// measured in its phases, and the rollbacks done.
func checkJournals(t *testing.T, since time.Time) {
	t.Helper()
	experiments, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/chaos/*.yaml"))
	files, _ := filepath.Glob(filepath.Join(repoRoot, ".cache/chaos/*.json"))
	seen := map[string]bool{}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.ModTime().Before(since) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var j struct {
			Experiment string    `json:"experiment"`
			Stack      string    `json:"stack"`
			Scale      float64   `json:"scale"`
			Start      time.Time `json:"start"`
			End        time.Time `json:"end"`
			Verdict    string    `json:"verdict"`
			Probes     []struct {
				Name                  string `json:"name"`
				Role                  string `json:"role"`
				Before, During, After *journalPhase
			} `json:"probes"`
			Method, Rollbacks []struct {
				Name   string    `json:"name"`
				Did    string    `json:"did"`
				OK     bool      `json:"ok"`
				Start  time.Time `json:"start"`
				TookMS int64     `json:"took_ms"`
			}
			Annotation  string `json:"annotation"`
			RecoveredMS int64  `json:"recovered_ms"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&j); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		seen[j.Experiment] = true
		if j.Verdict != "held" || j.Stack != "local" || !j.End.After(j.Start) || j.Scale != 0.25 || len(j.Method) == 0 || len(j.Rollbacks) == 0 ||
			j.RecoveredMS < 0 || !strings.HasPrefix(j.Annotation, "not annotated") {
			t.Errorf("%s: %s", f, b)
		}
		for _, r := range append(j.Method, j.Rollbacks...) {
			if !r.OK || r.Did == "" {
				t.Errorf("%s: action %+v", f, r)
			}
		}
		// The postmortem beside it: its timeline is the journal's times
		// (UTC, to the millisecond), each SLO's budget, what held.
		md, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".md")
		if err != nil {
			t.Errorf("%s: no postmortem: %v", f, err)
		}
		stamp := func(t time.Time) string { return "| " + t.UTC().Format("2006-01-02T15:04:05.000Z") + " | " }
		rows := []string{stamp(j.Start) + "experiment started", stamp(j.End) + "experiment ended: " + j.Verdict}
		for _, m := range j.Method {
			rows = append(rows, stamp(m.Start)+"fault in: "+m.Name)
		}
		for _, r := range j.Rollbacks {
			rows = append(rows, stamp(r.Start)+"rollback: "+r.Name)
		}
		if n := len(j.Rollbacks); n > 0 && j.RecoveredMS >= 0 {
			last := j.Rollbacks[n-1]
			rows = append(rows, stamp(last.Start.Add(time.Duration(last.TookMS+j.RecoveredMS)*time.Millisecond))+"recovered")
		}
		rows = append(rows, "## Error budget burned", "| service1-availability | ", "## What held and what did not")
		for _, r := range rows {
			if !strings.Contains(string(md), r) {
				t.Errorf("%s: the postmortem lacks %q (from the journal):\n%s", f, r, md)
			}
		}
		for _, p := range j.Probes {
			phases := []*journalPhase{p.Before, p.After}
			if p.Role == "hypothesis" {
				phases = []*journalPhase{p.During}
			}
			for _, ph := range phases {
				if ph == nil || !ph.Held || len(ph.Readings) == 0 {
					t.Errorf("%s: probe %q (%s) not measured and held in each of its phases", f, p.Name, p.Role)
				}
			}
		}
	}
	if len(seen) != len(experiments) {
		t.Errorf("journals of %d experiments, want %d: %v", len(seen), len(experiments), seen)
	}
}
