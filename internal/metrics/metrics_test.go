package metrics_test

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/metrics/statsdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T, addr string) *metrics.Client {
	c := metrics.New(metrics.Options{Addr: addr, Service: "svc", Version: "v1", Interval: 50 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerMiddleware(t *testing.T) {
	rcv := statsdtest.Listen(t)
	c := newClient(t, rcv.Addr())
	r := chi.NewRouter()
	r.Use(c.Middleware("/healthz"))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusTeapot)
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {})

	serve := func(method, path string) {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("X-Request-ID", "rid-must-not-be-a-tag")
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	serve("GET", "/users/42")
	serve("GET", "/users/43")
	serve("GET", "/healthz")          // not measured
	serve("GET", "/secret/path/9999") // unmatched
	serve("BREW", "/users/1")         // unknown method
	c.Close()

	lines := rcv.WaitFor(t, metrics.ServerRequestDuration, 4, 2*time.Second)
	if len(lines) != 4 {
		t.Fatalf("want one line per measured request (4), got %d: %v", len(lines), lines)
	}
	want := map[string]string{"service": "svc", "method": "GET", "route": "/users/{id}", "status": "418"}
	for _, l := range lines[:2] {
		if l.Type != "ms" || l.Value < 20 || l.Value > 2000 {
			t.Errorf("duration %v %s, want ≥20 ms as a timer", l.Value, l.Type)
		}
		for k, v := range want {
			if l.Tags[k] != v {
				t.Errorf("tag %s=%q, want %q (%s)", k, l.Tags[k], v, l.Raw)
			}
		}
		if len(l.Tags) != len(want) {
			t.Errorf("tags %v, want exactly %v", l.Tags, want)
		}
	}
	if l := lines[2]; l.Tags["route"] != "unmatched" || l.Tags["status"] != "404" {
		t.Errorf("unmatched request: %s", l.Raw)
	}
	if l := lines[3]; l.Tags["method"] != "OTHER" {
		t.Errorf("unknown method: %s", l.Raw)
	}
	for _, l := range rcv.Lines() {
		for _, v := range l.Tags {
			if strings.Contains(v, "42") || strings.Contains(v, "9999") || strings.Contains(v, "rid-must") || strings.Contains(v, "healthz") {
				t.Errorf("a raw path, an ID or a probe leaked into %s", l.Raw)
			}
		}
	}
}

// MiddlewareWith tells its observer of each measured request what it sent:
// the route pattern, the status and the duration; probes not.
func TestMiddlewareWithTellsTheObserver(t *testing.T) {
	c := newClient(t, "")
	type seen struct {
		route  string
		status int
		took   time.Duration
	}
	var got []seen
	r := chi.NewRouter()
	r.Use(c.MiddlewareWith(func(_ *http.Request, route string, status int, took time.Duration) {
		got = append(got, seen{route, status, took})
	}, "/healthz"))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		w.WriteHeader(http.StatusTeapot)
	})
	r.Get("/healthz", func(http.ResponseWriter, *http.Request) {})
	for _, p := range []string{"/users/7", "/healthz", "/nope"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	if len(got) != 2 || got[0].route != "/users/{id}" || got[0].status != http.StatusTeapot || got[0].took < 10*time.Millisecond ||
		got[1].route != "unmatched" || got[1].status != http.StatusNotFound {
		t.Errorf("observed %+v; want /users/{id} 418 after 10 ms or more, then unmatched 404, and no probe", got)
	}
}

func TestReporterSendsGaugesAndBuildInfo(t *testing.T) {
	rcv := statsdtest.Listen(t)
	c := newClient(t, rcv.Addr())
	_ = c
	gor := rcv.WaitFor(t, metrics.RuntimeGoroutines, 1, 5*time.Second)
	if gor[0].Value < 1 || gor[0].Type != "g" || gor[0].Tags["service"] != "svc" {
		t.Errorf("goroutines: %s", gor[0].Raw)
	}
	if h := rcv.WaitFor(t, metrics.RuntimeHeapAlloc, 1, 5*time.Second); h[0].Value < 1024 {
		t.Errorf("heap: %s", h[0].Raw)
	}
	bi := rcv.WaitFor(t, metrics.BuildInfo, 1, 5*time.Second)[0]
	if bi.Value != 1 || bi.Tags["version"] != "v1" || !strings.HasPrefix(bi.Tags["go_version"], "go1.") {
		t.Errorf("build info: %s", bi.Raw)
	}
	if a := rcv.WaitFor(t, metrics.ServerActiveRequests, 1, 5*time.Second)[0]; a.Value != 0 || a.Type != "g" {
		t.Errorf("in flight: %s", a.Raw)
	}
}

func TestCollectorsRunAndPanicsAreCounted(t *testing.T) {
	rcv := statsdtest.Listen(t)
	calls := 0
	c := metrics.New(metrics.Options{Addr: rcv.Addr(), Service: "svc", Interval: 20 * time.Millisecond},
		func(c *metrics.Client) { calls++; c.Gauge(metrics.DBPoolOpen, 3, nil) })
	count := c.PanicCounter()
	r := chi.NewRouter()
	r.Get("/boom/{x}", func(w http.ResponseWriter, r *http.Request) { count(r, "boom") })
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom/1", nil))
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom/2", nil))
	time.Sleep(100 * time.Millisecond)
	c.Close()
	rcv.Settle()
	if calls < 2 {
		t.Errorf("collector ran %d times", calls)
	}
	if g := rcv.WaitFor(t, metrics.DBPoolOpen, 1, 5*time.Second); g[0].Value != 3 {
		t.Errorf("collector gauge: %s", g[0].Raw)
	}
	var total float64
	for _, l := range rcv.WaitFor(t, metrics.ServerPanics, 1, 5*time.Second) {
		if l.Tags["route"] != "/boom/{x}" || l.Type != "c" {
			t.Errorf("panic counter: %s", l.Raw)
		}
		total += l.Value
	}
	if total != 2 {
		t.Errorf("panics counted %v, want 2", total)
	}
}

// TestDeadReceiverCostsNothing: nothing listens on the port; sends neither
// fail nor block.
func TestDeadReceiverCostsNothing(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	dead := pc.LocalAddr().String()
	pc.Close()
	c := newClient(t, dead)
	start := time.Now()
	for range 20000 {
		c.Timing(metrics.ServerRequestDuration, time.Millisecond, []string{"route:/x"})
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("20000 sends to a dead receiver took %s", el)
	}
}

// TestUnresolvableReceiverStartsAnyway: the host does not resolve (its
// container is not up); New returns a working no-op client, and Close is
// prompt.
func TestUnresolvableReceiverStartsAnyway(t *testing.T) {
	var logs bytes.Buffer
	c := metrics.New(metrics.Options{Addr: "no-such-host.invalid:9125", Service: "svc", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if !strings.Contains(logs.String(), `"msg":"dependency down","dependency":"statsd no-such-host.invalid:9125"`) {
		t.Errorf("the receiver's absence was not logged as an outage: %s", logs.String())
	}
	c.Timing(metrics.ServerRequestDuration, time.Millisecond, nil)
	start := time.Now()
	c.Close()
	if time.Since(start) > 3*time.Second {
		t.Fatal("Close waited on the reconnect loop")
	}
}

func TestTagsCacheIsBounded(t *testing.T) {
	built := 0
	tags := metrics.NewTags(2, func(k int) []string { built++; return []string{"k"} })
	for range 3 {
		tags.Get(1)
		tags.Get(2)
	}
	if built != 2 {
		t.Errorf("cached keys rebuilt: %d builds", built)
	}
	tags.Get(3)
	tags.Get(3)
	if built != 4 {
		t.Errorf("a key past the bound must be built, not cached: %d builds", built)
	}
	if allocs := testing.AllocsPerRun(100, func() { tags.Get(1) }); allocs != 0 {
		t.Errorf("a cached Get allocates %v times", allocs)
	}
}

func TestStatusTag(t *testing.T) {
	if metrics.StatusTag(0) != "none" || metrics.StatusTag(503) != "503" {
		t.Fatal("StatusTag")
	}
}
