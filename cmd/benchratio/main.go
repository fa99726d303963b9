// Command benchratio turns `go test -bench` output into the ratios
// BENCHMARKS.md reports: each stack against its baseline measured in the same
// run (absolute times on a shared machine say little; ratios travel).
//
//	go test -run '^$' -bench . -benchmem -count 5 ./service1/ | go run ./cmd/benchratio
//	... | go run ./cmd/benchratio -write bench/baseline.json    # record a baseline
//	... | go run ./cmd/benchratio -check bench/baseline.json    # fail on a >10 % regression
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/failready/failready/cmd/internal/stats"
)

// pairs are the comparisons: a stack and the baseline it is measured against.
var pairs = [][2]string{
	{"BenchmarkServer/full", "BenchmarkServer/otelhttp"},
	{"BenchmarkServer/otelhttp", "BenchmarkServer/bare"},
	{"BenchmarkClient/full", "BenchmarkClient/bare"},
	{"BenchmarkCreateUser/outbox", "BenchmarkCreateUser/plain"},
}

// partsBase is the baseline of the per-middleware benchmarks: each
// BenchmarkMiddleware/NAME is reported as what it adds to it.
const partsBase = "BenchmarkMiddleware/none"

// Result is what a run measured: medians, and the ratios of the pairs.
type Result struct {
	Ratios map[string]float64 // "a / b" → median ns/op ratio
	Allocs map[string]float64 // benchmark → median allocs/op
	NsOp   map[string]float64 // benchmark → median ns/op
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("benchratio", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := parse(in)
	if err != nil {
		return err
	}
	report(out, res)
	reportParts(out, res)
	return nil
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

// parse reads benchmark lines and keeps the median of each measure.
func parse(in io.Reader) (Result, error) {
	ns, allocs := map[string][]float64{}, map[string][]float64{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		ns[m[1]] = append(ns[m[1]], v)
		if m[4] != "" {
			a, _ := strconv.ParseFloat(m[4], 64)
			allocs[m[1]] = append(allocs[m[1]], a)
		}
	}
	if err := sc.Err(); err != nil {
		return Result{}, err
	}
	if len(ns) == 0 {
		return Result{}, errors.New("no benchmark lines in the input")
	}
	res := Result{Ratios: map[string]float64{}, Allocs: map[string]float64{}, NsOp: map[string]float64{}}
	for k, v := range ns {
		res.NsOp[k] = stats.Median(v)
	}
	for k, v := range allocs {
		res.Allocs[k] = stats.Median(v)
	}
	for _, p := range pairs {
		a, okA := res.NsOp[p[0]]
		b, okB := res.NsOp[p[1]]
		if okA && okB && b > 0 {
			res.Ratios[p[0]+" / "+p[1]] = a / b
		}
	}
	return res, nil
}

func report(out io.Writer, r Result) {
	names := make([]string, 0, len(r.NsOp))
	for k := range r.NsOp {
		names = append(names, k)
	}
	slices.Sort(names)
	fmt.Fprintln(out, "| benchmark | median ns/op | median allocs/op |")
	fmt.Fprintln(out, "|---|---|---|")
	for _, k := range names {
		fmt.Fprintf(out, "| %s | %.0f | %.0f |\n", strings.TrimPrefix(k, "Benchmark"), r.NsOp[k], r.Allocs[k])
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| ratio (same run) | value |")
	fmt.Fprintln(out, "|---|---|")
	for _, p := range pairs {
		k := p[0] + " / " + p[1]
		if v, ok := r.Ratios[k]; ok {
			fmt.Fprintf(out, "| %s | %.2f× |\n", strings.ReplaceAll(k, "Benchmark", ""), v)
		}
	}
}

// reportParts prints what each BenchmarkMiddleware/NAME adds to the
// baseline: differences, not ratios, since each part is small beside it.
func reportParts(out io.Writer, r Result) {
	base, ok := r.NsOp[partsBase]
	if !ok {
		return
	}
	var names []string
	for k := range r.NsOp {
		if strings.HasPrefix(k, "BenchmarkMiddleware/") && k != partsBase {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	fmt.Fprintln(out)
	fmt.Fprintf(out, "| middleware (alone, inside otelhttp: %.0f ns/op, %.0f allocs/op) | added ns/op | added allocs/op |\n", base, r.Allocs[partsBase])
	fmt.Fprintln(out, "|---|---|---|")
	for _, k := range names {
		fmt.Fprintf(out, "| %s | %+.0f | %+.0f |\n", strings.TrimPrefix(k, "BenchmarkMiddleware/"), r.NsOp[k]-base, r.Allocs[k]-r.Allocs[partsBase])
	}
}
