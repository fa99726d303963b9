package httpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/failready/failready/internal/httpserver"
	"github.com/failready/failready/internal/logging/logtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var timeouts = httpserver.Timeouts{
	ReadHeader: time.Second, Read: 5 * time.Second, Write: 5 * time.Second, Idle: time.Second,
}

// start serves h and returns its address, a cancel func standing in for
// SIGTERM, and the channel Run's result arrives on.
func start(t *testing.T, h http.Handler, shutdown time.Duration) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t2 := timeouts
	t2.Shutdown = shutdown
	go func() { done <- httpserver.Run(ctx, httpserver.New(h, t2, logger), ln, t2, nil, logger) }()
	return ln.Addr().String(), cancel, done
}

func TestShutdownDrainsInFlightRequest(t *testing.T) {
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(300 * time.Millisecond) // still working when SIGTERM arrives
		_, _ = io.WriteString(w, "finished")
	})
	addr, sigterm, done := start(t, h, 5*time.Second)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	sigterm()

	// New connections are refused once shutdown has begun...
	time.Sleep(50 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("server still accepts connections during shutdown")
	}
	// ...while the in-flight request completes, and Run returns cleanly.
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestShutdownBoundedWhenRequestsOutliveIt(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	addr, sigterm, done := start(t, h, 200*time.Millisecond)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	start := time.Now()
	sigterm()
	err := <-done
	close(release)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Fatalf("Run: %v, want a shutdown timeout error", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("shutdown took %s, bound was 200ms", el)
	}
}

func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	addr, sigterm, done := start(t, mux, time.Second)
	defer func() { sigterm(); <-done }()
	_, port, _ := net.SplitHostPort(addr)

	if err := httpserver.Healthcheck(context.Background(), ":"+port, "/ok"); err != nil {
		t.Errorf("/ok: %v", err)
	}
	if err := httpserver.Healthcheck(context.Background(), ":"+port, "/bad"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("/bad: %v", err)
	}
	if err := httpserver.Healthcheck(context.Background(), "nonsense", "/ok"); err == nil {
		t.Error("bad listen address accepted")
	}
}

func TestServerHasTimeouts(t *testing.T) {
	srv := httpserver.New(http.NotFoundHandler(), timeouts, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("a timeout or limit is unset: %+v", srv)
	}
}

// TestHeaderLimit: Go's server refuses headers past MaxHeaderBytes plus the
// 4 KiB of read slack it allows (net/http: initialReadLimitSize), so the
// real threshold is about 68 KiB; its 431 comes before any handler runs.
func TestHeaderLimit(t *testing.T) {
	srv := httpserver.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), timeouts,
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		// After a 431, net/http lingers 500 ms before closing the
		// connection (closeWriteAndWait): wait for it, for goleak.
		for deadline := time.Now().Add(3 * time.Second); goleak.Find() != nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for _, c := range []struct {
		kib    int
		status int
	}{{63, 200}, {66, 200}, {69, 431}, {80, 431}} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", c.kib<<10))
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%d KiB: %v", c.kib, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("a %d KiB header: %d, want %d", c.kib, resp.StatusCode, c.status)
		}
	}
}

// TestDrainKeepsServingWhileNotReady: after SIGTERM, readiness turns false at
// once and new requests are still served for the drain period.
func TestDrainKeepsServingWhileNotReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	notReady := make(chan struct{})
	tt := timeouts
	tt.Drain, tt.Shutdown = 500*time.Millisecond, time.Second
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	go func() {
		done <- httpserver.Run(ctx, httpserver.New(h, tt, logger), ln, tt, func() { close(notReady) }, logger)
	}()
	start := time.Now()
	cancel()
	<-notReady
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("a request during the drain failed: %v", err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Fatalf("stopped after %s, before the drain ended", el)
	}
}

func TestDebugListener(t *testing.T) {
	var buf logtest.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	stop := httpserver.StartDebug(context.Background(), "127.0.0.1:0", logger)
	defer stop()
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range logtest.Parse(t, buf.String()) {
			if l.Str("msg") == "debug listening" {
				addr = l.Str("addr")
			}
		}
	}
	runtime.GC() // at least one cycle to count
	resp, err := http.Get("http://" + addr + "/debug/runtime")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Goroutines int
		GCCycles   int `json:"gc_cycles"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Goroutines < 1 || v.GCCycles < 1 {
		t.Fatalf("/debug/runtime: %v %+v", err, v)
	}
	resp2, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil || resp2.StatusCode != 200 {
		t.Fatalf("pprof: %v", err)
	}
	resp2.Body.Close()
	if noop := httpserver.StartDebug(context.Background(), "", logger); noop == nil {
		t.Fatal("StartDebug with no address must return a no-op stop")
	}
}
