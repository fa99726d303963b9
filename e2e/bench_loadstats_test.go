//go:build e2e

package e2e

// The statistics of make bench-load (bench_load_test.go), here so that make e2e
// tests them on every run.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// loadRun is one loadgen run's summary, and its latencies in microseconds.
type loadRun struct {
	Requests   int     `json:"requests"`
	Throughput float64 `json:"throughput"`
	Unexpected int     `json:"unexpected"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	latencies  []float64
	peakRSS    float64 // loadgen's own, MiB
}

// pooled is every answer's latency of runs, in milliseconds, sorted.
func pooled(runs []loadRun) []float64 {
	var all []float64
	for _, r := range runs {
		for _, v := range r.latencies {
			all = append(all, v/1000)
		}
	}
	slices.Sort(all)
	return all
}

// quantile of sorted values.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// bootstrap gives a 95 % interval for stat over n paired rounds: 1 000
// times, it draws n rounds with replacement (the same ones for every mode,
// since the modes of a round ran side by side) and computes stat on them;
// stat may resample within each round too. Resampling the rounds keeps the
// machine's drift from one round to the next in the interval, which a
// bootstrap of the pooled answers alone would hide. The seed is fixed, so
// the same runs give the same interval.
func bootstrap(n int, stat func(rng *rand.Rand, rounds []int) float64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := make([]int, n)
	var v []float64
	for range 1000 {
		for i := range rounds {
			rounds[i] = rng.IntN(n)
		}
		v = append(v, stat(rng, rounds))
	}
	slices.Sort(v)
	return v[25], v[974]
}

// p99Ratio is the p99 of mode a over the p99 of mode b, each pooled over
// their rounds, with its interval: rounds resampled, then the answers
// within each round.
func p99Ratio(a, b []loadRun) (ratio, lo, hi float64) {
	var buf []float64
	p99 := func(rng *rand.Rand, runs []loadRun, rounds []int) float64 {
		buf = buf[:0]
		for _, i := range rounds {
			l := runs[i].latencies
			for range l {
				buf = append(buf, l[rng.IntN(len(l))])
			}
		}
		slices.Sort(buf)
		return quantile(buf, 0.99)
	}
	lo, hi = bootstrap(min(len(a), len(b)), func(rng *rand.Rand, rounds []int) float64 {
		return p99(rng, a, rounds) / p99(rng, b, rounds)
	})
	return quantile(pooled(a), 0.99) / quantile(pooled(b), 0.99), lo, hi
}

// sumRatio is sum(a) / sum(b) over paired rounds, with its interval.
func sumRatio(a, b []float64) (ratio, lo, hi float64) {
	sum := func(v []float64, rounds []int) float64 {
		s := 0.0
		for _, i := range rounds {
			s += v[i]
		}
		return s
	}
	all := make([]int, min(len(a), len(b)))
	for i := range all {
		all[i] = i
	}
	lo, hi = bootstrap(len(all), func(_ *rand.Rand, rounds []int) float64 { return sum(a, rounds) / sum(b, rounds) })
	return sum(a, all) / sum(b, all), lo, hi
}

// verdict: met when the whole interval is within the target, missed when
// the whole interval is beyond it, and otherwise the run cannot tell.
func verdict(lo, hi, target float64) string {
	switch {
	case hi <= target:
		return "met"
	case lo > target:
		return "**missed**"
	default:
		return "too noisy to tell"
	}
}

// TestLoadStatistics: the verdicts of make bench-load on made-up rounds whose
// answer is known.
func TestLoadStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// rounds of 2 000 answers around base µs, each round scaled by drift.
	rounds := func(base float64, drift ...float64) []loadRun {
		var rs []loadRun
		for _, d := range drift {
			var r loadRun
			for range 2000 {
				r.latencies = append(r.latencies, base*d*(1+rng.ExpFloat64()))
			}
			rs = append(rs, r)
		}
		return rs
	}
	steady := []float64{1, 1, 1, 1, 1}
	off := rounds(1000, steady...)
	if got := quantile([]float64{1, 2, 3, 4}, 0.5); got != 3 {
		t.Errorf("quantile = %v", got)
	}

	// 1.5× slower every round: the whole interval is above 1.1.
	r, lo, hi := p99Ratio(rounds(1500, steady...), off)
	if v := verdict(lo, hi, 1.1); v != "**missed**" || r < 1.4 || r > 1.6 {
		t.Errorf("1.5× slower: %.2f (%.2f–%.2f) %s", r, lo, hi, v)
	}
	// The same: the interval holds 1, and is under 1.1.
	r, lo, hi = p99Ratio(rounds(1000, steady...), off)
	if v := verdict(lo, hi, 1.1); v != "met" || lo > 1 || hi < 1 {
		t.Errorf("the same: %.2f (%.2f–%.2f) %s", r, lo, hi, v)
	}
	steadyWidth := hi - lo
	// The same on average, but the rounds drift by ±30 %: the interval
	// holds that drift (a bootstrap of the pooled answers alone would be
	// about as narrow as for steady rounds), and cannot call the target.
	r, lo, hi = p99Ratio(rounds(1000, 0.7, 1.3, 0.75, 1.25, 1.0), off)
	if v := verdict(lo, hi, 1.1); v != "too noisy to tell" || hi-lo < 2*steadyWidth {
		t.Errorf("drifting rounds: %.2f (%.2f–%.2f) %s; steady rounds' interval was %.2f wide", r, lo, hi, v, steadyWidth)
	}

	r, lo, hi = sumRatio([]float64{2.4, 2.2, 2.6}, []float64{2, 2, 2})
	if r < 1.199 || r > 1.201 || lo < 1.09 || hi > 1.31 || lo > r || hi < r {
		t.Errorf("CPU ratio %.3f (%.3f–%.3f)", r, lo, hi)
	}
}

// telemetryGroup reports whether a group of a goroutine dump belongs to the
// telemetry clients.
func telemetryGroup(group string) bool {
	return strings.Contains(group, "google.golang.org/grpc") || strings.Contains(group, "otlptrace") ||
		strings.Contains(group, "datadog-go")
}

// dumpGroups splits a debug=1 goroutine dump into its groups ("N @ ..."
// and its frames). The dump opens with a "goroutine profile: total N" line
// on the first group's own line, and the groups come largest first: left
// there, the largest group (a leak's, say) would not be counted.
func dumpGroups(dump string) []string {
	if rest, ok := strings.CutPrefix(dump, "goroutine profile:"); ok {
		_, dump, _ = strings.Cut(rest, "\n")
	}
	return strings.Split(dump, "\n\n")
}

// telemetryKinds counts a goroutine dump's telemetry goroutines by kind.
func telemetryKinds(dump string) map[string]int {
	out := map[string]int{}
	for _, group := range dumpGroups(dump) {
		var n int
		if _, err := fmt.Sscanf(group, "%d @", &n); err == nil && telemetryGroup(group) {
			out[kindOf(group)] += n
		}
	}
	return out
}

// grpcClients is how many gRPC client connections (ClientConns) service1's
// telemetry holds: the OTLP trace exporter's and the OTLP metric
// exporter's (the histograms with exemplars).
const grpcClients = 2

// connectionKinds are the goroutines a gRPC client connection holds for as
// long as it is open, with how many of each one connection has: its
// transport's reader, its writer (the loopy writer) and its keepalive, and
// its callback serializers (three, started when the connection leaves
// idle at the first export: 306 for 102 connections in the leak shown in
// BENCHMARKS.md). A connection the
// exporter opened during the run and keeps is these, and no more; a leak
// (a connection per export, say) is more of them than grpcClients allow.
var connectionKinds = []struct {
	kind, frame string
	per         int
}{
	{"grpc transport reader", "(*http2Client).reader", 1},
	{"grpc transport writer", "(*loopyWriter).run", 1},
	{"grpc transport keepalive", "(*http2Client).keepalive", 1},
	{"grpc callback serializer", "(*CallbackSerializer).run", 3},
}

// kindOf names a telemetry group of a goroutine dump: a connection's kind,
// or its innermost telemetry frame (the function, without its arguments).
func kindOf(group string) string {
	for _, k := range connectionKinds {
		if strings.Contains(group, k.frame) {
			return k.kind
		}
	}
	// debug=1 frames: "#\t0x4a5b6c\tpackage.function+0x12\t/path/file.go:34",
	// innermost first.
	for _, line := range strings.Split(group, "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) >= 3 && f[0] == "#" && telemetryGroup(f[2]) {
			fn, _, _ := strings.Cut(f[2], "+0x")
			return fn
		}
	}
	return "other telemetry"
}

// leaks is what a census after the load holds beyond a healthy process:
// more of a connection's kinds than grpcClients open connections have, or
// more of any other kind than before the load. A connection held open is
// not a leak; one more connection than the exporters is.
func leaks(before, after map[string]int) []string {
	var out []string
	bound := map[string]int{}
	for _, k := range connectionKinds {
		bound[k.kind] = k.per * grpcClients
	}
	for kind, n := range after {
		if b, ok := bound[kind]; ok {
			if n > b {
				out = append(out, fmt.Sprintf("%d × %s, more than the %d of %d held connection(s)", n, kind, b, grpcClients))
			}
		} else if n > before[kind] {
			out = append(out, fmt.Sprintf("%s: %d before the load, %d after", kind, before[kind], n))
		}
	}
	slices.Sort(out)
	return out
}

// frame is a debug=1 goroutine dump's frame line of function fn.
func frame(fn string) string { return "#\t0x4a5b6c\t" + fn + "+0x12\t/src/x.go:34" }

// dump is a debug=1 goroutine dump of groups, each n goroutines in the
// frames given (innermost first).
func dump(groups ...[]string) string {
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&b, "%s @ 0x1 0x2\n", g[0])
		for _, fn := range g[1:] {
			b.WriteString(frame(fn) + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestGoroutineLeakVerdict: make bench-load's verdict on service1's
// telemetry goroutines tells a connection the exporter holds (its reader,
// its writer, a serializer: allowed) from a leak (a connection per export,
// or any other kind that grew), on dumps in the shape pprof writes.
func TestGoroutineLeakVerdict(t *testing.T) {
	count := func(d string) map[string]int { return telemetryKinds("goroutine profile: total 99\n" + d) }
	idle := [][]string{
		{"1", "runtime.gopark", "github.com/DataDog/datadog-go/v5/statsd.(*sender).sendLoop"},
		{"1", "runtime.gopark", "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc.(*client).Start.func1"},
	}
	// Both exporters' connections, the spans' and the histograms'.
	conn := [][]string{
		{"2", "runtime.gopark", "google.golang.org/grpc/internal/transport.(*http2Client).reader"},
		{"2", "runtime.gopark", "google.golang.org/grpc/internal/transport.(*loopyWriter).run", "google.golang.org/grpc/internal/transport.NewHTTP2Client.func6"},
		{"6", "runtime.gopark", "google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"},
	}
	before := count(dump(idle...))
	if want := 2; len(before) != want {
		t.Fatalf("kinds before: %v", before)
	}
	if got := leaks(before, count(dump(append(idle, conn...)...))); len(got) != 0 {
		t.Errorf("a held connection judged a leak: %v", got)
	}
	// Largest group first, as pprof writes them: the first one shares its
	// line with the dump's header.
	perExport := append([][]string{
		{"12", "runtime.gopark", "google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"},
		{"4", "runtime.gopark", "google.golang.org/grpc/internal/transport.(*http2Client).reader"},
		{"4", "runtime.gopark", "google.golang.org/grpc/internal/transport.(*loopyWriter).run"},
	}, idle...)
	want := []string{
		"12 × grpc callback serializer, more than the 6 of 2 held connection(s)",
		"4 × grpc transport reader, more than the 2 of 2 held connection(s)",
		"4 × grpc transport writer, more than the 2 of 2 held connection(s)",
	}
	if got := leaks(before, count(dump(perExport...))); !slices.Equal(got, want) {
		t.Errorf("a connection per export:\n%q\nwant\n%q", got, want)
	}
	grown := append(slices.Clone(idle), []string{"2", "runtime.gopark", "github.com/DataDog/datadog-go/v5/statsd.(*sender).sendLoop"})
	if got := leaks(before, count(dump(grown...))); len(got) != 1 || !strings.Contains(got[0], "statsd.(*sender).sendLoop: 1 before the load, 3 after") {
		t.Errorf("another kind grew: %v", got)
	}
}
