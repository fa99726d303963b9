// Command benchinstr is the performance gate (make bench-check): it counts
// the instructions each request costs in service1's benchmarks, under
// valgrind's callgrind, and compares the stacks' ratios to their baselines
// with bench/instructions.json.
//
// Wall-clock ratios on a shared 2-core machine move by more than any useful
// tolerance (BENCHMARKS.md); an instruction count does not depend on what
// else the machine runs. To make it repeatable the benchmarks run with one P
// (GOMAXPROCS=1: no spinning Ms), no asynchronous preemption (callgrind
// cannot follow Go's preemption signals) and the GC off (its background
// workers run on a wall-clock schedule). So the count is the work done on
// behalf of a request — the handlers, the middleware, the batch processor,
// the statsd sender, the allocations themselves — but not the later cost of
// collecting what they allocated: `make test`'s allocation budget guards that.
//
// Each benchmark runs at two iteration counts and the difference is divided
// by the difference in iterations, so that start-up and set-up cancel out;
// each such figure is the median of -repeat runs.
//
//	go test -c -o service1.test ./service1/
//	go run ./cmd/benchinstr -test service1.test                                  # report
//	go run ./cmd/benchinstr -test service1.test -write bench/instructions.json   # record a baseline
//	go run ./cmd/benchinstr -test service1.test -check bench/instructions.json   # the gate
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/failready/failready/cmd/internal/stats"
)

// benchmarks are measured; pairs are compared: a stack and its baseline.
var (
	benchmarks = []string{"Server/bare", "Server/otelhttp", "Server/full", "Client/bare", "Client/full"}
	// parts are measured with -parts and reported as what each adds to
	// partsBase (the tracing handler alone); they are not gated.
	parts = []string{"Middleware/requestid", "Middleware/tracingmw", "Middleware/accesslog", "Middleware/metrics", "Middleware/exemplars", "Middleware/recoverer", "Middleware/ratelimit", "Middleware/shed", "Middleware/deadline"}
	// budgets are always measured, and gated on what a benchmark adds to
	// another, in instructions per request: the OpenTelemetry latency
	// histogram with its exemplar, told of each request by the DogStatsD
	// middleware, as the services wire it.
	budgets   = map[string]budget{"ExemplarCost/with": {Over: "ExemplarCost/without", Max: 3000}}
	partsBase = "Middleware/none"
	pairs     = [][2]string{
		{"Server/full", "Server/otelhttp"},
		{"Server/otelhttp", "Server/bare"},
		{"Client/full", "Client/bare"},
	}
)

// Result is what a run measured, as written with -write.
type Result struct {
	PerRequest map[string]float64 `json:"instructions_per_request"`
	Ratios     map[string]float64 `json:"ratios"` // "a / b"
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchinstr:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("benchinstr", flag.ContinueOnError)
	testBin := fs.String("test", "", "the service1 test binary (go test -c)")
	write := fs.String("write", "", "write the result as JSON to this file (a new baseline)")
	check := fs.String("check", "", "compare with this baseline; fail when a ratio grew by more than -tolerance")
	tolerance := fs.Float64("tolerance", 0.03, "allowed growth of a ratio, as a fraction")
	repeat := fs.Int("repeat", 3, "runs of each measurement; the median is kept")
	n1 := fs.Int("n1", 300, "iterations of the short run")
	n2 := fs.Int("n2", 1500, "iterations of the long run")
	withParts := fs.Bool("parts", false, "also count each middleware alone (BenchmarkMiddleware), for the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *testBin == "" || *n2 <= *n1 || *repeat < 1 {
		return errors.New("usage: benchinstr -test BINARY [-write FILE | -check FILE] (and -n2 > -n1, -repeat ≥ 1)")
	}
	if _, err := exec.LookPath("valgrind"); err != nil {
		return fmt.Errorf("valgrind is needed (Debian package valgrind): %w", err)
	}
	measured := slices.Clone(benchmarks)
	if *withParts {
		measured = append(append(measured, partsBase), parts...)
	}
	per, err := measureAll(ctx, *testBin, measured, *n1, *n2, *repeat)
	if err != nil {
		return err
	}
	// A budget is a difference of two counts, so a run's noise (the
	// runtime's own threads, whose work grows with the wall time a run
	// takes: a few hundred thousand instructions a run) weighs on it
	// directly: five times the iterations between the two runs make it a
	// fifth per request.
	var budgeted []string
	for _, b := range slices.Sorted(maps.Keys(budgets)) {
		budgeted = append(budgeted, b, budgets[b].Over)
	}
	perBudget, err := measureAll(ctx, *testBin, budgeted, *n1, *n1+5*(*n2-*n1), *repeat)
	if err != nil {
		return err
	}
	res := newResult(per)
	report(out, res)
	if *withParts {
		reportParts(out, per)
	}
	overBudget := checkBudgets(out, perBudget)
	if *write != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*write, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *check != "" {
		b, err := os.ReadFile(*check)
		if err != nil {
			return err
		}
		var base Result
		if err := json.Unmarshal(b, &base); err != nil {
			return fmt.Errorf("%s: %w", *check, err)
		}
		return errors.Join(overBudget, compare(out, base, res, *tolerance))
	}
	return overBudget
}

// budget is the most a benchmark may add to another (Over), in
// instructions per request: it must stay under Max.
type budget struct {
	Over string
	Max  float64
}

// checkBudgets fails when a budgeted benchmark adds its budget or more.
func checkBudgets(out io.Writer, per map[string]float64) error {
	var bad []string
	fmt.Fprintln(out, "\n| budgeted | over | added instructions per request | budget |\n|---|---|---|---|")
	for _, p := range slices.Sorted(maps.Keys(budgets)) {
		b := budgets[p]
		_, ok1 := per[p]
		_, ok2 := per[b.Over]
		if !ok1 || !ok2 {
			bad = append(bad, p+" or "+b.Over+": not measured")
			continue
		}
		added := per[p] - per[b.Over]
		fmt.Fprintf(out, "| %s | %s | %+.0f | under %.0f |\n", p, b.Over, added, b.Max)
		if added >= b.Max {
			bad = append(bad, fmt.Sprintf("%s adds %.0f instructions per request to %s; its budget is under %.0f", p, added, b.Over, b.Max))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "\n"))
	}
	return nil
}

// measureAll counts every benchmark at both iteration counts, repeat times,
// as many at once as there are cores (the counts do not depend on it).
func measureAll(ctx context.Context, bin string, benchmarks []string, n1, n2, repeat int) (map[string]float64, error) {
	type job struct {
		bench string
		n     int
	}
	var jobs []job
	for _, b := range benchmarks {
		for range repeat {
			jobs = append(jobs, job{b, n1}, job{b, n2})
		}
	}
	counts := map[job][]float64{}
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := count(ctx, bin, j.bench, j.n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			counts[j] = append(counts[j], float64(c))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	per := map[string]float64{}
	for _, b := range benchmarks {
		per[b] = (stats.Median(counts[job{b, n2}]) - stats.Median(counts[job{b, n1}])) / float64(n2-n1)
	}
	return per, nil
}

// The environment that makes the count repeatable (see the package doc).
// cpu.rdtscp=off: the Go runtime reads its CPU ticks with RDTSCP when CPUID
// offers it, and valgrind 3.19 offers it on some hosts without decoding
// it ("Unrecognised instruction at runtime.cputicks", now and then: the
// runtime reads the ticks only when a lock or channel waits); RDTSC after
// a fence is what it uses otherwise. (golang.org/x/sys/cpu, which reads the
// same variable, warns that it does not know the name: harmless.)
var countEnv = []string{"GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off", "GOGC=off"}

// count runs one benchmark for exactly n iterations under callgrind and
// returns the instructions the whole process executed.
func count(ctx context.Context, bin, bench string, n int) (uint64, error) {
	name, sub, _ := strings.Cut(bench, "/")
	cmd := exec.CommandContext(ctx, "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
		bin, "-test.run", "^$", "-test.bench", "^Benchmark"+regexp.QuoteMeta(name)+"$/^"+regexp.QuoteMeta(sub)+"$", "-test.benchtime", fmt.Sprintf("%dx", n))
	cmd.Env = append(os.Environ(), countEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s (%d iterations): %w\n%s%s", bench, n, err, stdout.Bytes(), tail(stderr.Bytes(), 2000))
	}
	if !strings.Contains(stdout.String(), "Benchmark"+bench) {
		return 0, fmt.Errorf("%s: the benchmark did not run:\n%s", bench, stdout.Bytes())
	}
	return collected(stderr.Bytes())
}

var collectedLine = regexp.MustCompile(`(?m)^==\d+== Collected : (\d+)$`)

// collected reads callgrind's total from its report on stderr.
func collected(stderr []byte) (uint64, error) {
	m := collectedLine.FindSubmatch(stderr)
	if m == nil {
		return 0, fmt.Errorf("no instruction count in callgrind's output:\n%s", tail(stderr, 2000))
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

func tail(b []byte, n int) []byte { return b[max(0, len(b)-n):] }

func newResult(per map[string]float64) Result {
	res := Result{PerRequest: map[string]float64{}, Ratios: map[string]float64{}}
	for _, b := range benchmarks {
		if v, ok := per[b]; ok {
			res.PerRequest[b] = v
		}
	}
	for _, p := range pairs {
		if a, b := per[p[0]], per[p[1]]; a > 0 && b > 0 {
			res.Ratios[p[0]+" / "+p[1]] = a / b
		}
	}
	return res
}

func report(out io.Writer, r Result) {
	fmt.Fprintln(out, "| benchmark | instructions per request |")
	fmt.Fprintln(out, "|---|---|")
	for _, b := range benchmarks {
		fmt.Fprintf(out, "| %s | %.0f |\n", b, r.PerRequest[b])
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| ratio (same run) | instructions |")
	fmt.Fprintln(out, "|---|---|")
	for _, p := range pairs {
		k := p[0] + " / " + p[1]
		fmt.Fprintf(out, "| %s | %.3f× |\n", k, r.Ratios[k])
	}
}

// reportParts prints what each middleware adds to the tracing handler alone.
func reportParts(out io.Writer, per map[string]float64) {
	fmt.Fprintf(out, "\n| middleware (alone, inside the tracing handler: %.0f instructions) | added instructions per request |\n|---|---|\n", per[partsBase])
	for _, p := range parts {
		fmt.Fprintf(out, "| %s | %+.0f |\n", strings.TrimPrefix(p, "Middleware/"), per[p]-per[partsBase])
	}
}

// compare fails when a ratio grew beyond tol, or is missing. Only ratios
// are gated: the absolute counts move with the Go toolchain and the
// dependencies, which the ratios mostly cancel out.
func compare(out io.Writer, base, now Result, tol float64) error {
	var bad []string
	for k, b := range base.Ratios {
		if n, ok := now.Ratios[k]; !ok {
			bad = append(bad, k+": missing")
		} else if n > b*(1+tol) {
			bad = append(bad, fmt.Sprintf("%s: %.3f× against a baseline of %.3f× (+%.1f %%)", k, n, b, (n/b-1)*100))
		}
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		return fmt.Errorf("instructions per request grew beyond %.0f %%:\n  %s", tol*100, strings.Join(bad, "\n  "))
	}
	fmt.Fprintf(out, "\nno ratio grew beyond %.0f %% of the baseline\n", tol*100)
	return nil
}
