//go:build e2e && benchload

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/failready/failready/internal/devstack"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// loadRun is one loadgen run's summary, and its latencies in microseconds.
type loadRun struct {
	Requests   int     `json:"requests"`
	Throughput float64 `json:"throughput"`
	Unexpected int     `json:"unexpected"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	latencies  []float64
}

// runLoad sends GET / (service1 → service2 → MariaDB) at rate for d.
func runLoad(t *testing.T, target string, rate int, d time.Duration) loadRun {
	t.Helper()
	file := filepath.Join(t.TempDir(), "latencies.txt")
	out, err := exec.Command(bins["cmd/loadgen"], "-target", target, "-only", "index", "-rate", fmt.Sprint(rate),
		"-duration", d.String(), "-latencies", file, "-json").Output()
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	var r loadRun
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("loadgen: %v: %s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatal(err)
		}
		r.latencies = append(r.latencies, v)
	}
	return r
}

// percentile of the pooled latencies of runs, in milliseconds.
func percentile(runs []loadRun, q float64) float64 {
	var all []float64
	for _, r := range runs {
		all = append(all, r.latencies...)
	}
	if len(all) == 0 {
		return 0
	}
	slices.Sort(all)
	return all[min(len(all)-1, int(q*float64(len(all))))] / 1000
}

// goroutines returns p's goroutine count, and how many of them belong to
// the telemetry clients (the OTLP gRPC exporter and its connection, the
// statsd sender): the total also moves with idle keep-alive connections,
// which are not a leak.
func goroutines(t *testing.T, p *devstack.Process) (total, telemetry int) {
	t.Helper()
	resp, err := http.Get(p.DebugURL() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// "N @ 0x..." opens each group of N goroutines with the same stack.
	for _, group := range strings.Split(string(b), "\n\n") {
		var n int
		if _, err := fmt.Sscanf(group, "%d @", &n); err != nil {
			continue
		}
		total += n
		if strings.Contains(group, "google.golang.org/grpc") || strings.Contains(group, "otlptrace") ||
			strings.Contains(group, "datadog-go") {
			telemetry += n
		}
	}
	return total, telemetry
}

func rss(t *testing.T, p *devstack.Process) float64 {
	t.Helper()
	b, err := p.RSS()
	if err != nil {
		t.Fatal(err)
	}
	return float64(b) / (1 << 20)
}

// measure reads the usage of the stack's processes so far.
func measure(t *testing.T, st *devstack.Stack) usage {
	t.Helper()
	var u usage
	for _, p := range []*devstack.Process{st.Service1, st.Service2} {
		c, err := p.CPU()
		if err != nil {
			t.Fatal(err)
		}
		u.services += c
		resp, err := http.Get(p.DebugURL() + "/debug/runtime")
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			GCCycles int `json:"gc_cycles"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		u.gc += v.GCCycles
	}
	for _, p := range []*devstack.Process{st.Collector, st.StatsdExporter} {
		c, err := p.CPU()
		if err != nil {
			t.Fatal(err)
		}
		u.pipeline += c
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	u.pipeline += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return u
}

// TestLoadTelemetryOverhead is the end-to-end benchmark of BENCHMARKS.md
// (make bench-load, build tag benchload: not part of make e2e, since it takes
// minutes and its figures are read rather than asserted, except for errors,
// memory growth and leaked goroutines): GET / at a fixed rate through the
// real stack in three modes, alternating, the services restarted for each:
//
//   - off: OTEL_SDK_DISABLED=true and STATSD_ADDR=off;
//   - sink: all telemetry on, exported to receivers that cost nothing (an
//     OTLP endpoint that decodes nothing, a UDP socket nobody reads), so
//     that the difference from off is what the services themselves pay;
//   - pipeline: all telemetry on, through the collector and statsd_exporter
//     to a trace receiver, all on the same cores as the services, as in
//     compose.
//
// Then the collector and statsd-exporter dead (not listening) and
// black-holed, and the collector brought back.
//
// With BENCH_PROFILE_DIR set, it also saves CPU profiles of both services
// during the first run of each mode (service1-off.pprof ...), for go tool
// pprof.
func TestLoadTelemetryOverhead(t *testing.T) {
	rcv := otlptest.Listen(t)
	sink := otlptest.ListenSink(t)
	// A UDP socket that never reads: statsd sends succeed and are dropped.
	holeUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holeUDP.Close()
	// BENCH_EXTRA_ENV: more settings for both services in every run, to try
	// a tuning (say OTEL_BSP_MAX_EXPORT_BATCH_SIZE=64) against the same runs.
	base := append([]string{"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000", "DEBUG_ADDR=127.0.0.1:0"},
		strings.Fields(os.Getenv("BENCH_EXTRA_ENV"))...)
	env := func(extra ...string) map[string][]string {
		e := append(append([]string{}, base...), extra...)
		return map[string][]string{"service1": e, "service2": e}
	}
	st, _ := startStackWith(t, devstack.Options{
		StatsdExporterBin: toolBin(t, "STATSD_EXPORTER_BIN"), PrometheusBin: toolBin(t, "PROMETHEUS_BIN"),
		OtelcolBin: toolBin(t, "OTELCOL_BIN"), TraceExportEndpoint: rcv.Addr(), Env: env(),
	})
	ctx := context.Background()
	const rate, d, rounds = 200, 10 * time.Second, 3
	modes := []struct {
		name string
		env  map[string][]string
	}{
		{"off", env("OTEL_SDK_DISABLED=true", "STATSD_ADDR=off")},
		{"sink", env("OTEL_EXPORTER_OTLP_ENDPOINT=http://"+sink.Addr(), "STATSD_ADDR="+holeUDP.LocalAddr().String())},
		{"pipeline", env("OTEL_EXPORTER_OTLP_ENDPOINT=http://"+st.OTLPEndpoint, "STATSD_ADDR="+st.StatsdUDP)},
	}

	var results []string
	row := func(name string, r loadRun, u usage) {
		results = append(results, fmt.Sprintf("| %s | %d | %.1f | %.2f | %.2f | %d | %.2f / %.2f | %d |",
			name, r.Requests, r.Throughput, r.P50, r.P99, r.Unexpected, u.services.Seconds(), u.pipeline.Seconds(), u.gc))
		if r.Unexpected != 0 {
			t.Errorf("%s: %d unexpected answers", name, r.Unexpected)
		}
	}
	note := func(format string, args ...any) {
		results = append(results, "| ("+fmt.Sprintf(format, args...)+") |||||||| ")
	}
	profileDir := os.Getenv("BENCH_PROFILE_DIR")
	runs := map[string][]loadRun{}
	var healthyTelemetry int // telemetry goroutines of service1 with a healthy collector
	for round := range rounds {
		for _, m := range modes {
			if err := st.Restart(ctx, m.env); err != nil {
				t.Fatal(err)
			}
			runLoad(t, st.Service1.URL(), rate, 2*time.Second) // warm up
			var stopProfiles func()
			if profileDir != "" && round == 0 {
				stopProfiles = cpuProfiles(t, profileDir, m.name, d, st.Service1, st.Service2)
			}
			u0 := measure(t, st)
			r := runLoad(t, st.Service1.URL(), rate, d)
			u1 := measure(t, st)
			if stopProfiles != nil {
				stopProfiles()
			}
			row(fmt.Sprintf("%s (round %d)", m.name, round+1), r, u1.since(u0))
			runs[m.name] = append(runs[m.name], r)
			if m.name == "pipeline" && round == 0 {
				_, healthyTelemetry = goroutines(t, st.Service1)
				note("RSS after this run: service1 %.1f MiB, service2 %.1f MiB", rss(t, st.Service1), rss(t, st.Service2))
			}
		}
	}
	if calls, bytes := sink.Exports(); calls == 0 {
		t.Errorf("the sink received no export")
	} else {
		note("the sink received %d exports, %.1f MiB", calls, float64(bytes)/(1<<20))
	}

	// Dead telemetry: nothing listens, then black holes (a TCP listener that
	// never answers; the UDP socket that never reads).
	closedTCP, _ := net.Listen("tcp", "127.0.0.1:0")
	deadTCP := closedTCP.Addr().String()
	closedTCP.Close()
	deadUDP := fmt.Sprintf("127.0.0.1:%d", mustFreeUDP(t))
	hole, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hole.Close()
	for _, c := range []struct{ name, otlp, statsd string }{
		{"collector and statsd dead", deadTCP, deadUDP},
		{"collector and statsd black-holed", hole.Addr().String(), holeUDP.LocalAddr().String()},
	} {
		if err := st.Restart(ctx, env("OTEL_EXPORTER_OTLP_ENDPOINT=http://"+c.otlp, "STATSD_ADDR="+c.statsd)); err != nil {
			t.Fatal(err)
		}
		runLoad(t, st.Service1.URL(), rate, 2*time.Second)
		time.Sleep(time.Second)
		g0, tel0 := goroutines(t, st.Service1)
		r0 := rss(t, st.Service1)
		u0 := measure(t, st)
		r := runLoad(t, st.Service1.URL(), rate, d)
		u1 := measure(t, st)
		time.Sleep(6 * time.Second) // let the batch exports time out
		g1, tel1 := goroutines(t, st.Service1)
		r1 := rss(t, st.Service1)
		row(c.name, r, u1.since(u0))
		runs[c.name] = append(runs[c.name], r)
		note("service1: goroutines %d → %d, of them telemetry %d → %d (%d with a healthy collector); RSS %.1f → %.1f MiB",
			g0, g1, tel0, tel1, healthyTelemetry, r0, r1)
		if r1-r0 > 10 {
			t.Errorf("%s: RSS grew %.1f MiB", c.name, r1-r0)
		}
		if tel1 > tel0 {
			t.Errorf("%s: telemetry goroutines grew with the load: %d → %d", c.name, tel0, tel1)
		}
	}

	// The collector comes back where the black hole was: the exporter must
	// reconnect and shed every goroutine the outage cost.
	holeAddr := hole.Addr().String()
	hole.Close()
	back := otlptest.ListenAt(t, holeAddr)
	start := time.Now()
	_, tel := goroutines(t, st.Service1)
	for (tel > healthyTelemetry || len(back.Spans()) == 0) && time.Since(start) < 60*time.Second {
		runLoad(t, st.Service1.URL(), 20, time.Second) // spans to export
		_, tel = goroutines(t, st.Service1)
	}
	if tel > healthyTelemetry || len(back.Spans()) == 0 {
		t.Errorf("60 s after the collector came back: %d spans received, %d telemetry goroutines (%d with a healthy collector)",
			len(back.Spans()), tel, healthyTelemetry)
	}
	note("collector back after the black hole: telemetry goroutines %d (healthy %d) after %.0f s; %d spans received",
		tel, healthyTelemetry, time.Since(start).Seconds(), len(back.Spans()))

	for _, name := range []string{"service1", "service2"} {
		fi, _ := os.Stat(bins[name])
		note("binary %s: %.1f MiB", name, float64(fi.Size())/(1<<20))
	}
	t.Logf("\n| run (GET /, %d req/s for %s) | requests | req/s | p50 ms | p99 ms | unexpected | CPU s: services / pipeline | GC cycles |\n|---|---|---|---|---|---|---|---|\n%s\n\n%s",
		rate, d, strings.Join(results, "\n"), summary(runs))
}

// usage is what the stack's processes have consumed so far: CPU of the
// services, CPU of the telemetry pipeline (collector, statsd_exporter and
// this test process, which hosts the OTLP receiver that stands in for
// Jaeger, and the sink), and the services' GC cycles.
type usage struct {
	services, pipeline time.Duration
	gc                 int
}

func (u usage) since(u0 usage) usage {
	return usage{u.services - u0.services, u.pipeline - u0.pipeline, u.gc - u0.gc}
}

// cpuProfiles starts a CPU profile of each process for d, saved in dir as
// NAME-MODE.pprof; the returned func waits for them.
func cpuProfiles(t *testing.T, dir, mode string, d time.Duration, ps ...*devstack.Process) (wait func()) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, len(ps))
	for _, p := range ps {
		go func() {
			resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.DebugURL(), int(d.Seconds())))
			if err != nil {
				done <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, p.Name+"-"+mode+".pprof"), b, 0o644)
			}
			done <- err
		}()
	}
	return func() {
		for range ps {
			if err := <-done; err != nil {
				t.Errorf("profile: %v", err)
			}
		}
	}
}

func mustFreeUDP(t *testing.T) int {
	p, err := devstack.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// summary compares the modes over the pooled latencies of their runs (a
// percentile of 6 000 answers is steadier than the mean of three), and
// pair by pair within each round (the spread between rounds shows the
// machine's noise).
func summary(runs map[string][]loadRun) string {
	var b strings.Builder
	b.WriteString("| mode | requests | p50 ms | p99 ms | p99 ÷ off | throughput ÷ off | p99 ÷ off, round by round |\n|---|---|---|---|---|---|---|\n")
	off := runs["off"]
	tp := func(rs []loadRun) float64 {
		s := 0.0
		for _, r := range rs {
			s += r.Throughput
		}
		return s / float64(len(rs))
	}
	for _, mode := range []string{"off", "sink", "pipeline", "collector and statsd dead", "collector and statsd black-holed"} {
		rs := runs[mode]
		if len(rs) == 0 {
			continue
		}
		n := 0
		for _, r := range rs {
			n += len(r.latencies)
		}
		var pairs []string
		for i := range min(len(rs), len(off)) {
			pairs = append(pairs, fmt.Sprintf("%.2f×", rs[i].P99/off[i].P99))
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.2f× | %.3f× | %s |\n", mode, n, percentile(rs, 0.50), percentile(rs, 0.99),
			percentile(rs, 0.99)/percentile(off, 0.99), tp(rs)/tp(off), strings.Join(pairs, ", "))
	}
	return b.String()
}
