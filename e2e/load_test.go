//go:build e2e && benchload

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/internal/stack"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// loadRun is one loadgen run's summary.
type loadRun struct {
	Requests   int     `json:"requests"`
	Throughput float64 `json:"throughput"`
	Unexpected int     `json:"unexpected"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
}

func runLoad(t *testing.T, target string, rate int, d time.Duration) loadRun {
	t.Helper()
	out, err := exec.Command(bins["cmd/loadgen"], "-target", target, "-rate", fmt.Sprint(rate), "-duration", d.String(), "-json").Output()
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	var r loadRun
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("loadgen: %v: %s", err, out)
	}
	return r
}

func goroutines(t *testing.T, p *stack.Process) int {
	t.Helper()
	resp, err := http.Get(p.DebugURL() + "/debug/runtime")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Goroutines int }
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return v.Goroutines
}

func rss(t *testing.T, p *stack.Process) float64 {
	t.Helper()
	b, err := p.RSS()
	if err != nil {
		t.Fatal(err)
	}
	return float64(b) / (1 << 20)
}

// TestLoadTelemetryOverhead is the end-to-end benchmark of BENCHMARKS.md
// (make bench-load, build tag benchload: not part of make e2e, since it takes
// minutes and its figures are read rather than asserted, except for errors
// and memory growth): load through the real
// stack with all telemetry on, against the same binaries with it off,
// alternating; then with the collector and statsd-exporter dead (not
// listening) and black-holed.
func TestLoadTelemetryOverhead(t *testing.T) {
	rcv := otlptest.Listen(t)
	base := []string{"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000", "DEBUG_ADDR=127.0.0.1:0"}
	env := func(extra ...string) map[string][]string {
		e := append(append([]string{}, base...), extra...)
		return map[string][]string{"service1": e, "service2": e}
	}
	st, _ := startStackWith(t, stack.Options{
		StatsdExporterBin: toolBin(t, "STATSD_EXPORTER_BIN"), PrometheusBin: toolBin(t, "PROMETHEUS_BIN"),
		OtelcolBin: toolBin(t, "OTELCOL_BIN"), TraceExportEndpoint: rcv.Addr(), Env: env(),
	})
	ctx := context.Background()
	const rate, d = 200, 10 * time.Second
	on := env("OTEL_EXPORTER_OTLP_ENDPOINT=http://"+st.OTLPEndpoint, "STATSD_ADDR="+st.StatsdUDP)
	off := env("OTEL_SDK_DISABLED=true", "STATSD_ADDR=off")

	var results []string
	row := func(name string, r loadRun) {
		results = append(results, fmt.Sprintf("| %s | %d | %.1f | %.2f | %.2f | %d |", name, r.Requests, r.Throughput, r.P50, r.P99, r.Unexpected))
		if r.Unexpected != 0 {
			t.Errorf("%s: %d unexpected answers", name, r.Unexpected)
		}
	}
	var onRuns, offRuns []loadRun
	for i, mode := range []string{"on", "off", "on", "off"} {
		e := on
		if mode == "off" {
			e = off
		}
		if err := st.Restart(ctx, e); err != nil {
			t.Fatal(err)
		}
		runLoad(t, st.Service1.URL(), rate, 2*time.Second) // warm up
		r := runLoad(t, st.Service1.URL(), rate, d)
		row(fmt.Sprintf("telemetry %s (round %d)", mode, i+1), r)
		if mode == "on" {
			onRuns = append(onRuns, r)
		} else {
			offRuns = append(offRuns, r)
		}
		if i == 2 {
			results = append(results, fmt.Sprintf("| (RSS after this run: service1 %.1f MiB, service2 %.1f MiB) |||||| ", rss(t, st.Service1), rss(t, st.Service2)))
		}
	}

	// Dead telemetry: nothing listens, then black holes (a TCP listener that
	// never answers; a UDP socket that never reads).
	closedTCP, _ := net.Listen("tcp", "127.0.0.1:0")
	deadTCP := closedTCP.Addr().String()
	closedTCP.Close()
	deadUDP := fmt.Sprintf("127.0.0.1:%d", mustFreeUDP(t))
	hole, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hole.Close()
	holeUDP, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer holeUDP.Close()
	for _, c := range []struct{ name, otlp, statsd string }{
		{"collector and statsd dead", deadTCP, deadUDP},
		{"collector and statsd black-holed", hole.Addr().String(), holeUDP.LocalAddr().String()},
	} {
		if err := st.Restart(ctx, env("OTEL_EXPORTER_OTLP_ENDPOINT=http://"+c.otlp, "STATSD_ADDR="+c.statsd)); err != nil {
			t.Fatal(err)
		}
		runLoad(t, st.Service1.URL(), rate, 2*time.Second)
		time.Sleep(time.Second)
		g0, r0 := goroutines(t, st.Service1), rss(t, st.Service1)
		r := runLoad(t, st.Service1.URL(), rate, d)
		time.Sleep(6 * time.Second) // let the batch exports time out
		g1, r1 := goroutines(t, st.Service1), rss(t, st.Service1)
		row(c.name, r)
		results = append(results, fmt.Sprintf("| (service1: goroutines %d → %d, RSS %.1f → %.1f MiB) |||||| ", g0, g1, r0, r1))
		if r1-r0 > 10 {
			t.Errorf("%s: RSS grew %.1f MiB", c.name, r1-r0)
		}
	}

	for _, name := range []string{"service1", "service2"} {
		fi, _ := os.Stat(bins[name])
		results = append(results, fmt.Sprintf("| (binary %s: %.1f MiB) |||||| ", name, float64(fi.Size())/(1<<20)))
	}
	t.Logf("\n| run (%d req/s for %s, one client) | requests | ok/s | p50 ms | p99 ms | unexpected |\n|---|---|---|---|---|---|\n%s\n%s",
		rate, d, strings.Join(results, "\n"), summary(onRuns, offRuns))
}

func mustFreeUDP(t *testing.T) int {
	p, err := stack.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func summary(on, off []loadRun) string {
	avg := func(rs []loadRun, f func(loadRun) float64) float64 {
		s := 0.0
		for _, r := range rs {
			s += f(r)
		}
		return s / float64(len(rs))
	}
	tp := func(r loadRun) float64 { return r.Throughput }
	p99 := func(r loadRun) float64 { return r.P99 }
	return fmt.Sprintf("telemetry on ÷ off: throughput %.3f×, p99 %.2f×", avg(on, tp)/avg(off, tp), avg(on, p99)/avg(off, p99))
}
