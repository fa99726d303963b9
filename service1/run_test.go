package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics/statsdtest"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeService2 answers like service2 and records the request IDs it saw.
// (The real service2 is behind service1 in the e2e tests.)
type fakeService2 struct {
	mu    sync.Mutex
	ids   []string
	paths []string
	delay time.Duration
	fail  int // answer this status to /users* when set
	// failFirst answers fail only to the first failFirst calls, then heals.
	failFirst int
	n         int      // calls so far
	keys      []string // Idempotency-Key of each POST
	timeouts  []string // Request-Timeout of each call
}

func (f *fakeService2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.ids = append(f.ids, r.Header.Get(requestid.Header))
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.timeouts = append(f.timeouts, r.Header.Get("Request-Timeout"))
	if r.Method == "POST" {
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	}
	f.n++
	delay, fail := f.delay, f.fail
	if f.failFirst > 0 {
		if f.n > f.failFirst {
			fail = 0
		}
	}
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	ctx := requestid.NewContext(r.Context(), r.Header.Get(requestid.Header))
	r = r.WithContext(ctx)
	switch {
	case r.URL.Path == "/healthz":
		respond.JSON(w, 200, map[string]string{"status": "ok"})
	case fail != 0 && r.URL.Path != "/healthz":
		respond.Error(w, r, fail, "database unavailable")
	case r.Method == "GET" && r.URL.Path == "/users":
		respond.JSON(w, 200, map[string]any{"users": []map[string]any{{"id": 1, "first_name": "joe", "last_name": "cool"}}})
	case r.Method == "GET" && r.URL.Path == "/users/1":
		respond.JSON(w, 200, map[string]any{"id": 1, "first_name": "joe", "last_name": "cool"})
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/users/"):
		respond.Error(w, r, 404, "user not found")
	case r.Method == "POST" && r.URL.Path == "/users":
		var n map[string]string
		_ = json.NewDecoder(r.Body).Decode(&n)
		respond.JSON(w, 201, map[string]any{"id": 2, "first_name": n["first_name"], "last_name": n["last_name"]})
	default:
		respond.Error(w, r, 404, "no route")
	}
}

func (f *fakeService2) calls() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...), append([]string(nil), f.paths...)
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startService1 runs service1's run() against service2URL and returns its
// base URL, its log buffer, and a stop func (SIGTERM) returning run's error.
func startService1(t *testing.T, service2URL string, extra map[string]string) (string, *logtest.Buffer, func() error) {
	t.Helper()
	env := map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "SERVICE2_URL": service2URL, "DEPLOYMENT_ID": "test-dep",
		"STATSD_ADDR":       statsdtest.Listen(t).Addr(),
		"OTEL_SDK_DISABLED": "true"} // tracing is tested in tracing_test.go
	for k, v := range extra {
		env[k] = v
	}
	return logtest.StartRun(t, func(ctx context.Context, stdout io.Writer) error {
		return run(ctx, []string{"service1"}, envOf(env), stdout)
	})
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, contentType, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func TestRequestsThroughService1(t *testing.T) {
	s2 := &fakeService2{}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, out, stop := startService1(t, srv.URL, nil)

	long := strings.Repeat("x", 31)
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		want                         string
		hop                          string // the call service2 must see, "" for none
	}{
		{"index", "GET", "/", "", "", 200, `{"users":[{"id":1,"first_name":"joe","last_name":"cool"}]}`, "GET /users"},
		{"get", "GET", "/users/1", "", "", 200, `"first_name":"joe"`, "GET /users/1"},
		{"get unknown", "GET", "/users/7", "", "", 404, "user not found", "GET /users/7"},
		{"get bad id: no hop", "GET", "/users/x1", "", "", 400, "positive integer", ""},
		{"create", "POST", "/users", "application/json", `{"first_name":"ann","last_name":"lee"}`, 201, `{"id":2,"first_name":"ann","last_name":"lee"}`, "POST /users"},
		{"create invalid: no hop", "POST", "/users", "application/json", `{"first_name":"` + long + `","last_name":"b"}`, 422, "at most 30", ""},
		{"create wrong type: no hop", "POST", "/users", "application/json", `{"first_name":["a"],"last_name":"b"}`, 400, "must be a string", ""},
		{"create unknown field: no hop", "POST", "/users", "application/json", `{"first_name":"a","last_name":"b","admin":true}`, 400, "unknown field", ""},
		{"create not JSON: no hop", "POST", "/users", "text/plain", `hello`, 415, "Content-Type", ""},
		{"create oversized: no hop", "POST", "/users", "application/json", `{"first_name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "larger than", ""},
		{"unknown route", "GET", "/admin", "", "", 404, "no route", ""},
		{"wrong method", "PUT", "/users/1", "", "", 405, "not allowed", ""},
		{"honeypot", "GET", "/honeypot", "", "", 500, "internal error", ""},
		{"after the panic, still serving", "GET", "/healthz", "", "", 200, `"ok"`, ""},
		{"readyz", "GET", "/readyz", "", "", 200, `"ready"`, "GET /healthz"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rid := "case-" + strings.ReplaceAll(c.name, " ", "-")
			rid = rid[:min(len(rid), 20)] + "-" + string(rune('a'+i))
			r := do(t, c.method, base+c.path, c.ct, c.body, map[string]string{requestid.Header: rid})
			if r.status != c.status || !strings.Contains(r.body, c.want) {
				t.Fatalf("got %d %s, want %d with %s", r.status, r.body, c.status, c.want)
			}
			if r.header.Get(requestid.Header) != rid {
				t.Errorf("X-Request-ID %q, want %q", r.header.Get(requestid.Header), rid)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			if r.status >= 400 {
				var b respond.ErrorBody
				if err := json.Unmarshal([]byte(r.body), &b); err != nil || b.RequestID != rid {
					t.Errorf("error body %s", r.body)
				}
			}
			ids, paths := s2.calls()
			hopped := len(ids) > 0 && ids[len(ids)-1] == rid
			if c.hop == "" && hopped {
				t.Errorf("service2 was called for input service1 must reject")
			}
			if c.hop != "" && (!hopped || paths[len(paths)-1] != c.hop) {
				t.Errorf("service2 saw %v %v, want %q with the request ID", ids, paths, c.hop)
			}
		})
	}

	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	// Log fields, asserted from the captured JSON.
	lines := out.Lines(t)
	acc := logtest.Find(lines, map[string]any{"msg": "http request", "route": "/users/{id}", "status": float64(404)})
	if len(acc) != 1 {
		t.Fatalf("access line for GET /users/7: %v", acc)
	}
	for _, k := range []string{"time", "level", "service", "version", "deployment_id", "request_id", "method", "route", "path", "status", "duration_ms", "content_type", "bytes"} {
		if _, ok := acc[0][k]; !ok {
			t.Errorf("access line lacks %s: %v", k, acc[0])
		}
	}
	if acc[0].Str("service") != "service1" || acc[0].Str("deployment_id") != "test-dep" || acc[0].Str("path") != "/users/7" {
		t.Errorf("access line: %v", acc[0])
	}
	// The client's line about the failed call carries the same request ID.
	rid := acc[0].Str("request_id")
	if c := logtest.Find(lines, map[string]any{"msg": "service2 refused the request", "request_id": rid, "level": "INFO"}); len(c) != 1 {
		t.Errorf("client line with the request ID: %v", c)
	}
	p := logtest.Find(lines, map[string]any{"msg": "panic recovered"})
	if len(p) != 1 || !strings.Contains(p[0].Str("stack"), "handleHoneypot") || p[0].Str("request_id") == "" {
		t.Errorf("panic line: %v", p)
	}
}

func TestGeneratedIDIsForwardedAndReturned(t *testing.T) {
	s2 := &fakeService2{}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, _, _ := startService1(t, srv.URL, nil)

	r := do(t, "GET", base+"/", "", "", nil)
	id := r.header.Get(requestid.Header)
	ids, _ := s2.calls()
	if r.status != 200 || id == "" || len(ids) != 1 || ids[0] != id {
		t.Fatalf("returned %q, service2 saw %v", id, ids)
	}
	r = do(t, "GET", base+"/", "", "", map[string]string{requestid.Header: "bad id <script>"})
	ids, _ = s2.calls()
	if got := r.header.Get(requestid.Header); got == "" || strings.Contains(got, "bad") || ids[1] != got {
		t.Fatalf("hostile id: returned %q, service2 saw %q", got, ids[1])
	}
}

func TestService2Failures(t *testing.T) {
	t.Run("5xx from service2", func(t *testing.T) {
		srv := httptest.NewServer(&fakeService2{fail: 500})
		defer srv.Close()
		base, _, _ := startService1(t, srv.URL, nil)
		if r := do(t, "GET", base+"/", "", "", nil); r.status != 502 || !strings.Contains(r.body, "service2 failed") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("503 from service2 passes as 503", func(t *testing.T) {
		srv := httptest.NewServer(&fakeService2{fail: 503})
		defer srv.Close()
		base, _, _ := startService1(t, srv.URL, nil)
		if r := do(t, "GET", base+"/", "", "", nil); r.status != 503 || !strings.Contains(r.body, "database unavailable") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("service2 down", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := "http://" + ln.Addr().String()
		ln.Close()
		base, _, _ := startService1(t, dead, nil)
		if r := do(t, "GET", base+"/", "", "", nil); r.status != 503 || !strings.Contains(r.body, "service2 unavailable") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := do(t, "GET", base+"/readyz", "", "", nil); r.status != 503 {
			t.Fatalf("readyz with service2 down: %d", r.status)
		}
		if r := do(t, "GET", base+"/healthz", "", "", nil); r.status != 200 {
			t.Fatalf("liveness must not depend on service2: %d", r.status)
		}
	})
	t.Run("service2 slower than SERVICE2_TIMEOUT", func(t *testing.T) {
		srv := httptest.NewServer(&fakeService2{delay: 5 * time.Second})
		defer srv.Close()
		base, _, _ := startService1(t, srv.URL, map[string]string{"SERVICE2_TIMEOUT": "200ms"})
		start := time.Now()
		r := do(t, "GET", base+"/users/1", "", "", nil)
		if r.status != 504 || !strings.Contains(r.body, "timed out") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("504 took %s; the deadline was 200ms", el)
		}
	})
}

// TestShutdownDrainsInFlightRequest: SIGTERM while a request waits on
// service2; the request still completes with 200 and run returns nil.
func TestShutdownDrainsInFlightRequest(t *testing.T) {
	s2 := &fakeService2{delay: 400 * time.Millisecond}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, out, stop := startService1(t, srv.URL, nil)

	got := make(chan response, 1)
	go func() {
		resp, err := http.Get(base + "/users/1")
		if err != nil {
			got <- response{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- response{status: resp.StatusCode, body: string(b)}
	}()
	for deadline := time.Now().Add(3 * time.Second); ; {
		if ids, _ := s2.calls(); len(ids) == 1 {
			break // the request is in flight at service2
		}
		if time.Now().After(deadline) {
			t.Fatal("request never reached service2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	r := <-got
	if r.status != 200 {
		t.Fatalf("in-flight request: %d %s", r.status, r.body)
	}
	lines := out.Lines(t)
	if len(logtest.Find(lines, map[string]any{"msg": "http server stopped"})) != 1 {
		t.Fatalf("no clean stop line")
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"LISTEN_ADDR":      "localhost",
		"SERVICE2_URL":     "service2:8001",
		"SERVICE2_TIMEOUT": "5",
		"READY_TIMEOUT":    "1h",
		"LOG_LEVEL":        "trace",
	} {
		err := run(context.Background(), []string{"service1"}, envOf(map[string]string{name: val}), io.Discard)
		if err == nil || !strings.Contains(err.Error(), name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: got %v", name, val, err)
		}
	}
}

func TestDefaultsWorkInCompose(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":8000" || c.Service2URL.String() != "http://service2:8001" {
		t.Fatalf("defaults %+v", c)
	}
}
