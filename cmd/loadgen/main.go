// Command loadgen drives an open-loop load at service1: a constant arrival
// rate, whatever the latency (a closed loop that waits for each answer would
// slow down with the service and hide its latency: coordinated omission). The
// mix has the happy paths, errors and bad input, each request carries its own
// X-Request-ID, and the summary lists the IDs of a few failures to grep for
// in the logs.
//
//	go run ./cmd/loadgen -rate 50 -duration 30s            # or: make load
//	go run ./cmd/loadgen -gate http://localhost:9090       # or: make release-gate
//
// With -gate it is the release gate: after the load, each SLO is judged
// over the run from Prometheus's recording rules, and a FAIL exits 1
// (gate.go; -capacity searches rising rates).
//
// It only targets loopback or the compose network's service1, and stops by
// itself after -duration.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// request is one kind of request in the mix, with its weight and the status
// a healthy stack answers.
type request struct {
	name, method, path, body string
	weight                   int
	expect                   int
}

// defaultMix is the traffic: mostly reads, some writes, and errors on purpose.
func defaultMix() []request {
	return []request{
		{"index", "GET", "/", "", 40, 200},
		{"get user", "GET", "/users/1", "", 25, 200},
		{"create user", "POST", "/users", `{"first_name":"load","last_name":"gen"}`, 12, 201},
		{"unknown user", "GET", "/users/999999999", "", 5, 404},
		{"invalid user", "POST", "/users", `{"first_name":"","last_name":"x"}`, 5, 422},
		{"malformed json", "POST", "/users", `{"first_name":`, 3, 400},
		{"bad id", "GET", "/users/abc", "", 3, 400},
		{"unknown route", "GET", "/no/such/route", "", 3, 404},
		{"wrong method", "DELETE", "/", "", 2, 405},
		{"honeypot", "GET", "/honeypot", "", 2, 500},
	}
}

// Summary is what a run measured (also printed as JSON with -json).
type Summary struct {
	Target     string         `json:"target"`
	Rate       int            `json:"rate"`
	Duration   string         `json:"duration"`
	Requests   uint64         `json:"requests"`
	Throughput float64        `json:"throughput"`
	Statuses   map[string]int `json:"statuses"`
	Planned    int            `json:"planned"`    // the requests the rate and duration ask for
	Unexpected int            `json:"unexpected"` // answers other than what a healthy stack gives
	// UnexpectedBy counts the unexpected answers by status ("0": none).
	UnexpectedBy map[string]int `json:"unexpected_by"`
	P50ms        float64        `json:"p50_ms"`
	P95ms        float64        `json:"p95_ms"`
	P99ms        float64        `json:"p99_ms"`
	MaxMs        float64        `json:"max_ms"`
	Failures     []Failure      `json:"failures"` // a few, to grep for
}

// Failure is one unexpected answer.
type Failure struct {
	Request   string `json:"request"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("target", orDefault(getenv("TARGET_URL"), "http://localhost:8000"), "service1's base URL (env TARGET_URL)")
	rate := fs.Int("rate", 50, "requests per second, 1 to 2000")
	duration := fs.Duration("duration", 30*time.Second, "how long, at most 10m")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	only := fs.String("only", "", "send only this kind of request of the mix (say index, for GET /)")
	latencies := fs.String("latencies", "", "also write every latency, in microseconds, one per line, to this file")
	gateURL := fs.String("gate", "", "the release gate: after the load, judge each SLO over the run from the recording rules of the Prometheus at this URL; exit 1 if one fails")
	settle := fs.Duration("settle", 20*time.Second, "with -gate: how long to wait after the load before judging (the last scrape, the last tasks)")
	capacityMode := fs.Bool("capacity", false, "with -gate: run at each of -rates in turn, -duration each, until one fails; report the highest that passed")
	ratesList := fs.String("rates", "50,100,200,300,400,600,800,1000,1200,1600,2000", "with -capacity: the rates to try, rising")
	maxTime := fs.Duration("max-time", 10*time.Minute, "with -capacity: the most the search may take")
	table := fs.String("capacity-table", "", "with -capacity: a file with the capacity table to compare with (docs/kubernetes.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *capacityMode && *gateURL == "" {
		return errors.New("-capacity needs -gate")
	}
	if *gateURL != "" {
		if _, err := checkHost(*gateURL, "prometheus", "-gate"); err != nil {
			return err
		}
	}
	mix := defaultMix()
	if *only != "" {
		mix = slices.DeleteFunc(mix, func(r request) bool { return r.name != *only })
		if len(mix) == 0 {
			var names []string
			for _, r := range defaultMix() {
				names = append(names, r.name)
			}
			return fmt.Errorf("-only %q: not in the mix (%s)", *only, strings.Join(names, ", "))
		}
	}
	var latOut *bufio.Writer
	if *latencies != "" {
		f, err := os.Create(*latencies)
		if err != nil {
			return err
		}
		defer f.Close()
		latOut = bufio.NewWriter(f)
		defer latOut.Flush()
	}
	if *rate < 1 || *rate > 2000 {
		return fmt.Errorf("-rate %d: want 1 to 2000", *rate)
	}
	if *duration <= 0 || *duration > 10*time.Minute {
		return fmt.Errorf("-duration %s: want up to 10m", *duration)
	}
	base, err := checkTarget(*target)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	attack := func(rate int) (*Summary, error) {
		return load(ctx, stdout, base, mix, rate, *duration, *timeout, latOut, *asJSON)
	}
	switch {
	case *capacityMode:
		var rates []int
		for _, f := range strings.Split(*ratesList, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r < 1 || r > 2000 || (len(rates) > 0 && r <= rates[len(rates)-1]) {
				return fmt.Errorf("-rates %q: want rising rates from 1 to 2000", *ratesList)
			}
			rates = append(rates, r)
		}
		return capacity(ctx, stdout, rates, *duration+*settle, *maxTime, *table, func(rate int) (bool, []Verdict, error) {
			return gate(ctx, stdout, *gateURL, *settle, func() (*Summary, error) { return attack(rate) })
		})
	case *gateURL != "":
		pass, _, err := gate(ctx, stdout, *gateURL, *settle, func() (*Summary, error) { return attack(*rate) })
		if err != nil {
			return err
		}
		if !pass {
			fmt.Fprintln(stdout, "release gate: FAIL")
			return errGateFailed
		}
		fmt.Fprintln(stdout, "release gate: PASS")
		return nil
	}
	_, err = attack(*rate)
	return err
}

// errGateFailed is the exit status of a failed gate (the lines say why).
var errGateFailed = errors.New("release gate: an SLO failed")

// load drives rate requests a second of mix at base for duration, and
// reports.
func load(ctx context.Context, stdout io.Writer, base string, mix []request, rate int, duration, timeout time.Duration, latOut *bufio.Writer, asJSON bool) (*Summary, error) {
	runID := fmt.Sprintf("load-%d", time.Now().Unix())
	var seq atomic.Uint64
	kinds := weighted(mix)
	// sent maps each request ID to its kind, to judge the answer: several
	// kinds share a method and URL.
	var mu sync.Mutex
	sent := map[string]request{}
	targeter := func(t *vegeta.Target) error {
		n := seq.Add(1)
		r := kinds[int(n)%len(kinds)]
		id := fmt.Sprintf("%s-%d", runID, n)
		mu.Lock()
		sent[id] = r
		mu.Unlock()
		t.Method, t.URL = r.method, base+r.path
		t.Header = http.Header{"X-Request-Id": {id}}
		if r.body != "" {
			t.Body = []byte(r.body)
			t.Header.Set("Content-Type", "application/json")
		}
		return nil
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(timeout), vegeta.MaxWorkers(1000), vegeta.KeepAlive(true))
	fmt.Fprintf(os.Stderr, "loadgen: %d req/s for %s at %s (run %s)\n", rate, duration, base, runID)

	var m vegeta.Metrics
	sum := Summary{Target: base, Rate: rate, Duration: duration.String(), Statuses: map[string]int{},
		Planned: int(float64(rate) * duration.Seconds()), UnexpectedBy: map[string]int{}}
	results := attacker.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, duration, runID)
	for {
		select {
		case <-ctx.Done():
			attacker.Stop()
		case res, ok := <-results:
			if !ok {
				m.Close()
				return &sum, report(stdout, &sum, &m, asJSON)
			}
			m.Add(res)
			if latOut != nil {
				fmt.Fprintln(latOut, res.Latency.Microseconds())
			}
			id := res.Headers.Get("X-Request-Id") // nil Headers (no answer) gives ""
			mu.Lock()
			r, ok := sent[id]
			delete(sent, id)
			mu.Unlock()
			if !ok || int(res.Code) != r.expect {
				sum.Unexpected++
				sum.UnexpectedBy[strconv.Itoa(int(res.Code))]++
				if len(sum.Failures) < 5 {
					sum.Failures = append(sum.Failures, Failure{
						Request: orDefault(r.name, res.Method+" "+res.URL), Status: int(res.Code), RequestID: id, Error: res.Error})
				}
			}
			continue
		}
		break
	}
	for res := range results { // drain after a stop
		m.Add(res)
	}
	m.Close()
	return &sum, report(stdout, &sum, &m, asJSON)
}

func report(w io.Writer, s *Summary, m *vegeta.Metrics, asJSON bool) error {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	s.Requests, s.Throughput = m.Requests, m.Throughput
	s.Statuses = m.StatusCodes
	s.P50ms, s.P95ms, s.P99ms, s.MaxMs = ms(m.Latencies.P50), ms(m.Latencies.P95), ms(m.Latencies.P99), ms(m.Latencies.Max)
	if asJSON {
		return json.NewEncoder(w).Encode(s)
	}
	fmt.Fprintf(w, "requests    %d at %d/s for %s (%.1f/s succeeded)\n", s.Requests, s.Rate, s.Duration, s.Throughput)
	fmt.Fprintf(w, "statuses    %s (the mix asks for 4xx and a 500 on purpose)\n", byStatus(s.Statuses))
	fmt.Fprintf(w, "latency     p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms\n", s.P50ms, s.P95ms, s.P99ms, s.MaxMs)
	fmt.Fprintf(w, "unexpected  %d answers differ from a healthy stack's\n", s.Unexpected)
	for _, f := range s.Failures {
		fmt.Fprintf(w, "  %-15s status %d  request_id %s %s\n", f.Request, f.Status, orDefault(f.RequestID, "-"), f.Error)
	}
	return nil
}

// byStatus writes counts by status code, in the codes' order: "200×9
// 404×1" ("0" is vegeta's code for no answer).
func byStatus(counts map[string]int) string {
	codes := make([]string, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	out := make([]string, 0, len(codes))
	for _, c := range codes {
		out = append(out, fmt.Sprintf("%s×%d", c, counts[c]))
	}
	return strings.Join(out, " ")
}

// weighted expands the mix into a cycle in which each request appears as
// often as its weight, interleaved.
func weighted(rs []request) []request {
	var out []request
	for round := 0; ; round++ {
		added := false
		for _, r := range rs {
			if round < r.weight {
				out = append(out, r)
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// checkTarget allows loopback addresses and the compose stack's service1:
// this tool is for the demo, never for someone else's server.
func checkTarget(raw string) (string, error) { return checkHost(raw, "service1", "-target") }

// checkHost allows loopback addresses and the compose service named.
func checkHost(raw, service, flag string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s %q: want an http(s) URL", flag, raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); !(host == "localhost" || host == service || (ip != nil && ip.IsLoopback())) {
		return "", fmt.Errorf("%s %q: only localhost, 127.0.0.0/8, ::1 or the compose %s", flag, raw, service)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
