// Command chaos runs the chaos experiments of deploy/chaos against the
// running stack (make up or make local alike), as the Principles of Chaos
// say: check the steady state, hypothesise that it holds through a
// real-world fault, inject the fault, try to disprove the hypothesis, roll
// back, and check that the steady state returns.
//
//	make experiment NAME=service2-down   # one experiment
//	make gameday                         # all of them, in turn, and a table
//	go run ./cmd/chaos check             # check every file, inject nothing
//
// Each experiment is one YAML file (docs/chaos.md, "The file", says how to write
// one). A run drives a steady load through service1 (make load), prints a
// verdict, writes a JSON journal to .cache/chaos, and annotates Grafana's
// dashboards (compose) with its start and end. The exit status: 0 when
// every hypothesis held, 1 when one was disproved (or the stack was not in
// its steady state to begin with), 2 for bad input (nothing is injected),
// 3 when a rollback failed (what is still broken and how to undo it by
// hand are printed).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// Exit statuses.
const (
	exitHeld      = 0
	exitDisproved = 1
	exitBadInput  = 2
	exitRollback  = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "deploy/chaos", "the experiments, one YAML file each")
	root := fs.String("root", ".", "the repository (make runs there; the SLOs are read from it)")
	scale := fs.Float64("scale", 1, "multiply every fault's duration and wait by this (make e2e runs 0.25); recovery bounds are not scaled")
	warmup := fs.Duration("warmup", 45*time.Second, "how long the steady state may take to show before the fault (the load's first scrapes)")
	rate := fs.Int("load-rate", 20, "requests/s of make load's mix through service1 while experiments run (0: none)")
	journals := fs.String("journal", ".cache/chaos", "where the journals go")
	prom := fs.String("prometheus", "http://127.0.0.1:9090", "Prometheus")
	toxi := fs.String("toxiproxy", "http://127.0.0.1:8474", "toxiproxy's API")
	grafana := fs.String("grafana", "http://127.0.0.1:3000", "Grafana, for the annotations (admin, GRAFANA_ADMIN_PASSWORD or admin)")
	timeout := fs.Duration("timeout", 10*time.Minute, "one experiment at most, all phases; its rollbacks run after it")
	alertlog := fs.String("alertlog", "http://127.0.0.1:9095", "alertlog, the alerts that fired (for the postmortems)")
	loki := fs.String("loki", "http://127.0.0.1:3100", "Loki, the failed requests' lines and trace IDs (for the postmortems)")
	jaeger := fs.String("jaeger", "http://localhost:16686", "Jaeger's UI, for the postmortems' trace links")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: chaos [flags] run NAME... | gameday | check [FILE...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitBadInput
	}
	cmd, names := fs.Arg(0), fs.Args()[min(1, fs.NArg()):]
	if err := errors.Join(loadSLOs(*root), loadProxies(*root)); err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return exitBadInput
	}
	var exps []*Experiment
	var err error
	switch {
	case cmd == "check" && len(names) > 0:
		for _, n := range names {
			e, lerr := Load(n)
			err = errors.Join(err, lerr)
			exps = append(exps, e)
		}
	case cmd == "check" || cmd == "gameday":
		exps, err = LoadDir(filepath.Join(*root, *dir))
	case cmd == "run" && len(names) > 0:
		for _, n := range names {
			e, lerr := Load(filepath.Join(*root, *dir, n+".yaml"))
			err = errors.Join(err, lerr)
			exps = append(exps, e)
		}
	default:
		fs.Usage()
		return exitBadInput
	}
	if err != nil {
		// Refused before anything is injected: the file, the field, why.
		fmt.Fprintln(stderr, "chaos: refused, nothing injected:", err)
		return exitBadInput
	}
	if cmd == "check" {
		fmt.Fprintf(stdout, "%d experiments: valid\n", len(exps))
		return exitHeld
	}
	if *scale <= 0 || *scale > 1 {
		fmt.Fprintf(stderr, "chaos: -scale %v: between 0 and 1\n", *scale)
		return exitBadInput
	}

	stack, err := whichStack(*root)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return exitBadInput
	}
	client := &http.Client{Timeout: 15 * time.Second}
	password := os.Getenv("GRAFANA_ADMIN_PASSWORD")
	if password == "" {
		password = "admin"
	}
	r := &runner{
		probe:    &prober{prometheus: strings.TrimSuffix(*prom, "/"), client: client},
		act:      &actor{root: *root, toxiproxy: strings.TrimSuffix(*toxi, "/"), client: client, scale: *scale},
		annotate: &annotator{url: strings.TrimSuffix(*grafana, "/"), user: "admin", password: password, client: client},
		stack:    stack, journals: filepath.Join(*root, *journals), warmup: *warmup, interval: time.Second,
		timeout: *timeout, out: stdout,
		witness: &witnesses{alertlog: strings.TrimSuffix(*alertlog, "/"), loki: strings.TrimSuffix(*loki, "/"),
			jaeger: strings.TrimSuffix(*jaeger, "/"), client: client},
	}
	fmt.Fprintf(stdout, "chaos: %d experiment(s) against the %s stack", len(exps), stack)
	if *scale != 1 {
		fmt.Fprintf(stdout, ", durations × %g", *scale)
	}
	fmt.Fprintln(stdout)
	if *rate > 0 {
		r.load = startLoad(*root, *rate, stdout)
		defer r.load.Stop()
	}

	var results []*Journal
	code := exitHeld
	for _, e := range exps {
		if ctx.Err() != nil {
			break
		}
		j, _ := r.Run(ctx, e)
		results = append(results, j)
		switch {
		case j.Verdict == RollbackBad:
			code = exitRollback
		case j.Verdict != Held && code == exitHeld:
			code = exitDisproved
		}
		if j.Verdict == RollbackBad {
			break // the next experiment would start from a broken stack
		}
	}
	if cmd == "gameday" || len(results) > 1 {
		table(stdout, results)
	}
	return code
}

// whichStack asks scripts/stack.sh which stack runs.
func whichStack(root string) (string, error) {
	out, err := exec.Command(filepath.Join(root, "scripts/stack.sh"), "which").Output()
	s := strings.TrimSpace(string(out))
	if err != nil || s == "" {
		return "", fmt.Errorf("scripts/stack.sh which: %v", err)
	}
	if s == "none" {
		return "", errors.New("no stack is running: start one with make up (compose) or make local (no Docker)")
	}
	return s, nil
}

// loader drives make load's mix through service1 (on whichever stack
// runs) until stop, in runs of 10 minutes (loadgen's bound), one after the
// other; err says why it stopped early.
type loader struct {
	mu   sync.Mutex
	err  error
	stop chan struct{}
	done chan struct{}
}

func startLoad(root string, rate int, out io.Writer) *loader {
	l := &loader{stop: make(chan struct{}), done: make(chan struct{})}
	fmt.Fprintf(out, "load: make load LOAD_RATE=%d through service1 while the experiments run\n", rate)
	go func() {
		defer close(l.done)
		for {
			cmd := exec.Command("make", "--no-print-directory", "-C", root, "load",
				fmt.Sprintf("LOAD_RATE=%d", rate), "LOAD_DURATION=10m")
			cmd.Env = makeEnv()
			var output bytes.Buffer
			cmd.Stdout, cmd.Stderr = &output, &output
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				l.fail(err)
				return
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-l.stop:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-exited
				}
				return
			case err := <-exited:
				if err != nil && time.Since(start) < 9*time.Minute {
					// loadgen exits 1 when answers were unexpected (the
					// faults cause them): only an early end is a failure.
					if time.Since(start) < 5*time.Second {
						l.fail(fmt.Errorf("make load: %v: %s", err, lastLines(strings.TrimSpace(output.String()), 3)))
						return
					}
				}
			}
		}
	}()
	return l
}

func (l *loader) fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

// Err says why the load stopped, if it did.
func (l *loader) Err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Stop ends the load and waits for it.
func (l *loader) Stop() {
	close(l.stop)
	<-l.done
}

// table prints the game day's results.
func table(w io.Writer, results []*Journal) {
	fmt.Fprintln(w, "\ngame day:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tHYPOTHESIS\tVERDICT\tKEY FIGURES")
	for _, j := range results {
		fig := figures(j)
		if j.RecoveredMS >= 0 {
			fig += fmt.Sprintf("; steady again after %.0fs", float64(j.RecoveredMS)/1000)
		}
		if j.Verdict != Held && len(j.Deviations) > 0 {
			fig = j.Deviations[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Experiment, j.Title, strings.ToUpper(j.Verdict), fig)
	}
	tw.Flush()
}
