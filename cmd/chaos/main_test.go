package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"
)

const repoRoot = "../.."

func TestMain(m *testing.M) {
	if err := errors.Join(loadSLOs(repoRoot), loadProxies(repoRoot)); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestExperimentsAreValid: every experiment of deploy/chaos loads, and
// each make action names a target of the Makefile.
func TestExperimentsAreValid(t *testing.T) {
	exps, err := LoadDir(filepath.Join(repoRoot, "deploy/chaos"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exps {
		for _, a := range append(append([]Action{}, e.Method...), e.Rollbacks...) {
			if a.Make != "" && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(a.Make)+`:`).Match(mk) {
				t.Errorf("%s: make %s is not a target of the Makefile", e.Name, a.Make)
			}
		}
	}
	if len(exps) < 11 {
		t.Errorf("%d experiments; want walkthrough 4's and 6's eleven", len(exps))
	}
}

// A valid experiment, broken one field at a time below.
const valid = `title: a title
steady_state:
  - name: up
    http: {url: "http://localhost:8000/", status: 200}
  - name: availability
    slo: {name: service1-availability, window: 30s}
method:
  - name: away
    make: chaos-service2-down
hypothesis:
  - name: fails fast
    http: {url: "http://localhost:8000/", status: 503, within: 200ms}
  - name: breaker
    prometheus: {query: 'max(circuit_breaker_state)', min: 2}
rollbacks:
  - name: reset
    toxiproxy: {reset: true}
durations: {inject: 30s, recover: 60s}
`

// TestInvalidExperimentsAreRefused: each error names the file, the field
// and why, and run refuses before it injects anything (it does not even
// look for a stack).
func TestInvalidExperimentsAreRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Load(write("valid", valid)); err != nil {
		t.Fatalf("the valid experiment: %v", err)
	}
	for name, c := range map[string]struct{ from, to, want string }{
		"unknown-field":   {"within: 200ms", "witin: 200ms", "field witin not found"},
		"bad-duration":    {"inject: 30s", "inject: thirty", `"thirty" is not a duration`},
		"no-rollback":     {"rollbacks:\n  - name: reset\n    toxiproxy: {reset: true}\n", "", "rollbacks: none"},
		"unknown-slo":     {"service1-availability", "service1-uptime", `steady_state[1].slo.name: "service1-uptime" is not an SLO`},
		"short-window":    {"window: 30s", "window: 5s", "steady_state[1].slo.window: 5s: at least 15s"},
		"not-chaos":       {"make: chaos-service2-down", "make: down", `method[0].make: "down" is not a chaos-* target`},
		"remote-url":      {`url: "http://localhost:8000/", status: 503`, `url: "http://example.com/", status: 503`, "hypothesis[0].http.url: \"http://example.com/\": experiments only call the stack on this machine"},
		"two-kinds":       {"prometheus: {query: 'max(circuit_breaker_state)', min: 2}", "prometheus: {query: 'max(circuit_breaker_state)', min: 2}\n    http: {url: \"http://localhost:8000/\", status: 200}", "hypothesis[1]: 2 of slo, prometheus, http set"},
		"no-bound":        {"min: 2}", "}", "hypothesis[1].prometheus: neither min nor max"},
		"bad-status":      {"status: 503", "status: 5003", "hypothesis[0].http.status: 5003 is not an HTTP status"},
		"bad-toxic":       {"toxiproxy: {reset: true}", "toxiproxy: {proxy: mysql, toxic: {name: x, type: lag, stream: downstream}}", `rollbacks[0].toxiproxy.toxic.type: "lag" is not one of`},
		"unknown-proxy":   {"toxiproxy: {reset: true}", "toxiproxy: {proxy: redis, enabled: true}", `rollbacks[0].toxiproxy.proxy: "redis" is not a proxy of deploy/toxiproxy/toxiproxy.json`},
		"wrong-type":      {"status: 200}", "status: ok}", "cannot unmarshal !!str `ok` into int"},
		"no-steady-state": {"steady_state:\n  - name: up\n    http: {url: \"http://localhost:8000/\", status: 200}\n  - name: availability\n    slo: {name: service1-availability, window: 30s}\n", "steady_state: []\n", "steady_state: no probe"},
	} {
		if !strings.Contains(valid, c.from) {
			t.Fatalf("%s: the valid experiment has no %q", name, c.from)
		}
		path := write(name, strings.Replace(valid, c.from, c.to, 1))
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming %s and saying %q", name, err, path, c.want)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-root", repoRoot, "-dir", dir, "run", name}, &stdout, &stderr)
		if code != exitBadInput || !strings.Contains(stderr.String(), "refused, nothing injected") || stdout.Len() > 0 {
			t.Errorf("%s: run exited %d, printed %q, %q; want %d, refused before anything", name, code, stdout.String(), stderr.String(), exitBadInput)
		}
	}
}

// world is what a runner test runs against: an HTTP service behind a real
// toxiproxy (in process), and a recorder standing in for Grafana's
// annotations API (Grafana is AGPL: never run here).
type world struct {
	proxy       *toxiclient.Proxy
	url         string // the service, through the proxy
	toxiproxy   string
	mu          sync.Mutex
	annotations []string // "METHOD path body"
	grafana     string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	t.Cleanup(svc.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := ln.Addr().String()
	ln.Close()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	go func() { _ = srv.Listen(api) }()
	client := toxiclient.NewClient(api)
	var proxy *toxiclient.Proxy
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if proxy, err = client.CreateProxy("service2", "127.0.0.1:0", strings.TrimPrefix(svc.URL, "http://")); err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal(err)
		}
	}
	w := &world{proxy: proxy, url: "http://" + proxy.Listen + "/", toxiproxy: "http://" + api}
	graf := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "secret" {
			http.Error(rw, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.mu.Lock()
		w.annotations = append(w.annotations, r.Method+" "+r.URL.Path+" "+string(b))
		w.mu.Unlock()
		io.WriteString(rw, `{"id":7,"message":"Annotation added"}`)
	}))
	t.Cleanup(graf.Close)
	w.grafana = graf.URL
	return w
}

func (w *world) runner(out io.Writer, journals string) *runner {
	client := &http.Client{Timeout: 5 * time.Second}
	return &runner{
		probe:    &prober{prometheus: "http://127.0.0.1:1", client: client},
		act:      &actor{root: repoRoot, toxiproxy: w.toxiproxy, client: client, scale: 1},
		annotate: &annotator{url: w.grafana, user: "admin", password: "secret", client: client},
		stack:    "test", journals: journals, warmup: 2 * time.Second, interval: 100 * time.Millisecond,
		timeout: time.Minute, out: out,
	}
}

// experiment is an experiment on the world's service: the fault is 300 ms
// of latency; hypothesis is its probes' YAML.
func (w *world) experiment(t *testing.T, hypothesis, rollback string) *Experiment {
	t.Helper()
	text := fmt.Sprintf(`title: latency on the test service
steady_state:
  - name: answers 200 within 100ms
    http: {url: %q, status: 200, within: 100ms}
method:
  - name: 300 ms of latency
    toxiproxy: {proxy: service2, toxic: {name: slow, type: latency, stream: downstream, attributes: {latency: 300}}}
hypothesis:
%s
rollbacks:
%s
durations: {inject: 2s, recover: 3s}
`, w.url, hypothesis, rollback)
	p := filepath.Join(t.TempDir(), "latency.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const resetRollback = "  - name: reset\n    toxiproxy: {reset: true}"

// TestRunHeldAndDisproved: a hypothesis that holds, and one the fault
// disproves; either way the rollback runs and the steady state returns.
// The journal has every phase of every probe; Grafana gets the start and
// the end.
func TestRunHeldAndDisproved(t *testing.T) {
	w := newWorld(t)
	journals := t.TempDir()
	for _, c := range []struct {
		hypothesis, verdict string
	}{
		{fmt.Sprintf("  - name: still answers 200\n    throughout: true\n    http: {url: %q, status: 200}\n  - name: slower than 250ms\n    http: {url: %q, status: 200}", w.url, w.url), Held},
		{fmt.Sprintf("  - name: still answers 200 within 100ms\n    http: {url: %q, status: 200, within: 100ms}", w.url), Disproved},
	} {
		var out bytes.Buffer
		r := w.runner(&out, journals)
		j, path := r.Run(context.Background(), w.experiment(t, c.hypothesis, resetRollback))
		if j.Verdict != c.verdict {
			t.Errorf("verdict %q, want %q:\n%s", j.Verdict, c.verdict, out.String())
		}
		if len(j.Rollbacks) != 1 || !j.Rollbacks[0].OK || j.RecoveredMS < 0 {
			t.Errorf("rollbacks %+v, recovered %d ms: want the reset done and the steady state back:\n%s", j.Rollbacks, j.RecoveredMS, out.String())
		}
		if toxics, _ := w.proxy.Toxics(); len(toxics) != 0 {
			t.Errorf("toxics left after the run: %v", toxics)
		}
		checkJournal(t, path, j)
		if !strings.Contains(out.String(), "verdict: "+strings.ToUpper(c.verdict)) {
			t.Errorf("no verdict line:\n%s", out.String())
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.annotations) != 4 || !strings.HasPrefix(w.annotations[0], "POST /api/annotations ") || !strings.HasPrefix(w.annotations[1], "PATCH /api/annotations/7 ") ||
		!strings.Contains(w.annotations[0], `"tags":["chaos","latency"]`) || !strings.Contains(w.annotations[1], `"timeEnd":`) || !strings.Contains(w.annotations[3], "disproved") {
		t.Errorf("annotations: %q; want a POST at the start and a PATCH with timeEnd and the verdict, for each run", w.annotations)
	}
}

// checkJournal: the journal file is the run's, in the documented format.
func checkJournal(t *testing.T, path string, j *Journal) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"experiment", "title", "file", "stack", "scale", "start", "end", "verdict", "deviations", "probes", "method", "rollbacks", "annotation", "recovered_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("journal %s has no %q", path, k)
		}
	}
	var back Journal
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != j.Verdict || !back.End.After(back.Start) || back.Experiment != "latency" {
		t.Errorf("journal %s: %+v", path, back)
	}
	for _, p := range back.Probes {
		phases := map[string]*Phase{"before": p.Before, "during": p.During, "after": p.After}
		want := []string{"before", "after"}
		if p.Role == "hypothesis" {
			want = []string{"during"}
		}
		for _, name := range want {
			ph := phases[name]
			if ph == nil || len(ph.Readings) == 0 || ph.Value == "" || ph.Deviated == ph.Held {
				t.Errorf("journal %s: probe %q has no readings %s: %+v", path, p.Name, name, ph)
			}
		}
	}
}

// TestRollbackFailureExitsNonZero: a rollback that fails makes the
// verdict "rollback failed", and the output says what the method did and
// how to undo it by hand.
func TestRollbackFailureExitsNonZero(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	r := w.runner(&out, t.TempDir())
	e := w.experiment(t, fmt.Sprintf("  - name: answers\n    http: {url: %q, status: 200}", w.url),
		"  - name: enable a proxy this toxiproxy does not have\n    toxiproxy: {proxy: worker-nats, enabled: true}")
	j, _ := r.Run(context.Background(), e)
	if j.Verdict != RollbackBad {
		t.Fatalf("verdict %q, want %q:\n%s", j.Verdict, RollbackBad, out.String())
	}
	for _, want := range []string{"THE STACK MAY STILL BE BROKEN", "POST /proxies/service2/toxics", "make chaos-reset", "curl -X POST " + w.toxiproxy + "/reset"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if toxics, _ := w.proxy.Toxics(); len(toxics) != 1 {
		t.Errorf("toxics %v: the failed rollback left the fault in, as the output says", toxics)
	}
}

// TestInterruptRollsBack: Ctrl-C while the fault is in ends the run, and
// the rollbacks still run.
func TestInterruptRollsBack(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	r := w.runner(&out, t.TempDir())
	e := w.experiment(t, fmt.Sprintf("  - name: answers 200 throughout\n    throughout: true\n    http: {url: %q, status: 200}", w.url), resetRollback)
	e.Durations.Inject = Duration(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if toxics, _ := w.proxy.Toxics(); len(toxics) > 0 {
				cancel() // as Ctrl-C does, through signal.NotifyContext
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	start := time.Now()
	j, _ := r.Run(ctx, e)
	if j.Verdict != Interrupted || len(j.Rollbacks) != 1 || !j.Rollbacks[0].OK || time.Since(start) > 30*time.Second {
		t.Errorf("verdict %q, rollbacks %+v after %v; want interrupted, rolled back, at once:\n%s", j.Verdict, j.Rollbacks, time.Since(start), out.String())
	}
	if toxics, _ := w.proxy.Toxics(); len(toxics) != 0 {
		t.Errorf("toxics left after the interrupted run: %v", toxics)
	}
}

// TestInterruptBeforeInjecting: Ctrl-C before the fault injects nothing
// and says interrupted, not that the stack was not steady.
func TestInterruptBeforeInjecting(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	r := w.runner(&out, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	j, _ := r.Run(ctx, w.experiment(t, fmt.Sprintf("  - name: answers\n    http: {url: %q, status: 200}", w.url), resetRollback))
	if j.Verdict != Interrupted || len(j.Method) != 0 || len(j.Rollbacks) != 0 {
		t.Errorf("verdict %q, method %+v, rollbacks %+v; want interrupted with nothing done:\n%s", j.Verdict, j.Method, j.Rollbacks, out.String())
	}
	if toxics, _ := w.proxy.Toxics(); len(toxics) != 0 {
		t.Errorf("toxics %v after a run interrupted before its method", toxics)
	}
}

// TestDashboardsShowTheRuns: every dashboard queries Grafana's own
// annotations by the tag the runner posts, so each run shows on all of
// them (organization annotations appear only where a dashboard asks).
func TestDashboardsShowTheRuns(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/grafana/dashboards/*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Annotations struct {
				List []struct {
					Datasource struct{ Type, UID string } `json:"datasource"`
					Enable     bool                       `json:"enable"`
					Target     struct {
						Type string   `json:"type"`
						Tags []string `json:"tags"`
					} `json:"target"`
				} `json:"list"`
			} `json:"annotations"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		shown := false
		for _, a := range d.Annotations.List {
			shown = shown || a.Enable && a.Datasource.Type == "grafana" && a.Target.Type == "tags" &&
				len(a.Target.Tags) == 1 && a.Target.Tags[0] == annotationTag
		}
		if !shown {
			t.Errorf("%s: no enabled annotation query for the tag %q: the experiments would not show on it", filepath.Base(f), annotationTag)
		}
	}
}

// TestScaleKeepsMetricsObservable: -scale shortens a fault, but not below
// the metrics pipeline's delay when the hypothesis reads Prometheus.
func TestScaleKeepsMetricsObservable(t *testing.T) {
	e, err := Load(filepath.Join(repoRoot, "deploy/chaos/service2-down.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.injectFor(0.25); got != metricsDelay {
		t.Errorf("service2-down at -scale 0.25: %v, want %v (its breaker probe reads Prometheus)", got, metricsDelay)
	}
	if got := e.injectFor(1); got != e.Durations.Inject.D() {
		t.Errorf("at -scale 1: %v, want the file's %v", got, e.Durations.Inject.D())
	}
	e.Hypothesis = e.Hypothesis[:1] // the HTTP probe alone
	if got := e.injectFor(0.25); got != scaled(e.Durations.Inject.D(), 0.25) {
		t.Errorf("HTTP probes only, at -scale 0.25: %v, want a quarter of %v", got, e.Durations.Inject.D())
	}
}
