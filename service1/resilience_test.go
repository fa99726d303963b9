package main

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failready/failready/internal/idempotency"
	"github.com/failready/failready/internal/logging/logtest"
)

func (f *fakeService2) snapshot() (calls int, keys, timeouts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, append([]string(nil), f.keys...), append([]string(nil), f.timeouts...)
}

// TestTransientFailuresAreRetried: a GET and a POST each fail once with 503
// and succeed on the retry; the POST's retry carries the same
// Idempotency-Key, so service2 can make it one row.
func TestTransientFailuresAreRetried(t *testing.T) {
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/users/1", ""},
		{"POST", "/users", `{"first_name":"a","last_name":"b"}`},
	} {
		s2 := &fakeService2{fail: 503, failFirst: 1}
		srv := httptest.NewServer(s2)
		base, _, _ := startService1(t, srv.URL, nil)
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		r := do(t, c.method, base+c.path, ct, c.body, nil)
		if r.status >= 300 {
			t.Fatalf("%s %s: %d %s after a transient failure", c.method, c.path, r.status, r.body)
		}
		calls, keys, _ := s2.snapshot()
		if calls != 2 {
			t.Fatalf("%s: service2 saw %d calls, want 2 (one retry)", c.method, calls)
		}
		if c.method == "POST" && (len(keys) != 2 || keys[0] == "" || keys[0] != keys[1]) {
			t.Fatalf("POST retried with keys %q, want the same key twice", keys)
		}
		srv.Close()
	}
}

// TestBreakerOpensFailsFastAndRecovers: service2 fails every call; after
// BREAKER_CONSECUTIVE_FAILURES failures the breaker opens: requests get 503
// with Retry-After at once, without a call to service2, and readiness is
// false; after BREAKER_OPEN_FOR a probe goes through, and once service2 is
// back the breaker closes.
func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	s2 := &fakeService2{fail: 503}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, logs, _ := startService1(t, srv.URL, map[string]string{
		"BREAKER_CONSECUTIVE_FAILURES": "3", "BREAKER_OPEN_FOR": "300ms", "RETRY_MAX": "0",
	})
	for i := range 3 {
		if r := do(t, "GET", base+"/users/1", "", "", map[string]string{"X-Request-Id": fmt.Sprintf("trip-%d", i+1)}); r.status != 503 {
			t.Fatalf("failing service2: %d", r.status)
		}
	}
	// The state change is logged as part of the request that caused it.
	if l := logtest.Find(logs.Lines(t), map[string]any{"msg": "circuit breaker state change", "to": "open"}); len(l) != 1 || l[0]["request_id"] != "trip-3" {
		t.Fatalf("breaker lines %v, want one with request_id trip-3", l)
	}
	before, _, _ := s2.snapshot()
	start := time.Now()
	r := do(t, "GET", base+"/users/1", "", "", nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("open breaker: %d Retry-After %q in %s: %s", r.status, r.header.Get("Retry-After"), time.Since(start), r.body)
	}
	if after, _, _ := s2.snapshot(); after != before {
		t.Fatalf("the open breaker let a call through (%d → %d)", before, after)
	}
	if r := do(t, "GET", base+"/readyz", "", "", nil); r.status != 503 {
		t.Fatalf("readyz with the breaker open: %d", r.status)
	}
	if r := do(t, "GET", base+"/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("liveness must stay true: %d", r.status)
	}

	s2.mu.Lock()
	s2.fail = 0 // service2 is back
	s2.mu.Unlock()
	time.Sleep(350 * time.Millisecond) // half-open
	if r := do(t, "GET", base+"/users/1", "", "", nil); r.status != 200 {
		t.Fatalf("probe after OpenFor: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/readyz", "", "", nil); r.status != 200 {
		t.Fatalf("readyz after recovery: %d", r.status)
	}
}

// TestRetryBudgetHolds: with service2 failing every call and the breaker
// kept closed, service2 receives at most about 1.1× the requests (plus the
// budget's initial 10 tokens), not 3×.
func TestRetryBudgetHolds(t *testing.T) {
	s2 := &fakeService2{fail: 503}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, _, _ := startService1(t, srv.URL, map[string]string{
		"BREAKER_CONSECUTIVE_FAILURES": "1000", "BREAKER_FAILURE_RATIO": "1", "BREAKER_MIN_REQUESTS": "100000",
		"RETRY_BACKOFF_BASE": "1ms", "RETRY_BACKOFF_CAP": "2ms", "RATE_LIMIT_PER_CLIENT": "100000", "RATE_LIMIT_GLOBAL": "100000",
	})
	const n = 200
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				do(t, "GET", base+"/users/1", "", "", nil)
			}
		})
	}
	wg.Wait()
	calls, _, _ := s2.snapshot()
	t.Logf("%d requests → %d calls to service2 (%.2f×)", n, calls, float64(calls)/n)
	if calls > n*12/10 {
		t.Fatalf("%d requests made %d calls: the retry budget did not hold", n, calls)
	}
	if calls <= n {
		t.Fatalf("%d calls for %d requests: no retry at all", calls, n)
	}
}

// TestDeadlineBudget: service2 hangs; the request answers 504 within its
// budget, and service2 was told how much time was left.
func TestDeadlineBudget(t *testing.T) {
	s2 := &fakeService2{delay: 5 * time.Second}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, _, _ := startService1(t, srv.URL, map[string]string{"REQUEST_TIMEOUT": "400ms", "SERVICE2_TIMEOUT": "1s"})
	start := time.Now()
	r := do(t, "GET", base+"/users/1", "", "", nil)
	el := time.Since(start)
	if r.status != 504 || el > 400*time.Millisecond+500*time.Millisecond {
		t.Fatalf("%d after %s, want 504 within the 400ms budget (+ margin): %s", r.status, el, r.body)
	}
	_, _, timeouts := s2.snapshot()
	if len(timeouts) == 0 {
		t.Fatal("service2 never called")
	}
	ms, err := strconv.Atoi(timeouts[0])
	if err != nil || ms > 400 || ms < 100 {
		t.Fatalf("Request-Timeout sent to service2: %q, want the ~400 ms left", timeouts[0])
	}
}

// TestRateLimitPerClient: the N+1-th request in a window gets 429 with
// Retry-After; the probes are not limited.
func TestRateLimitPerClient(t *testing.T) {
	srv := httptest.NewServer(&fakeService2{})
	defer srv.Close()
	base, _, _ := startService1(t, srv.URL, map[string]string{"RATE_LIMIT_PER_CLIENT": "5", "RATE_LIMIT_WINDOW": "10s"})
	for i := range 5 {
		if r := do(t, "GET", base+"/users/1", "", "", nil); r.status != 200 {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
	}
	r := do(t, "GET", base+"/users/1", "", "", nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Limit") != "5" {
		t.Fatalf("6th request: %d %v %s", r.status, r.header, r.body)
	}
	if r := do(t, "GET", base+"/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("probe rate limited: %d", r.status)
	}
}

// TestFrozenService2TakesTheWholeBudget: what walkthrough 4's first
// experiment shows with the defaults (3 attempts of SERVICE2_TIMEOUT 1 s in a
// REQUEST_TIMEOUT of 3 s: the first 504 after about 3 s), here at a fifth of
// the scale: a GET is tried three times, each attempt cut at its own
// timeout, and the last ends with the request's budget.
func TestFrozenService2TakesTheWholeBudget(t *testing.T) {
	s2 := &fakeService2{delay: 5 * time.Second}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, _, _ := startService1(t, srv.URL, map[string]string{"REQUEST_TIMEOUT": "600ms", "SERVICE2_TIMEOUT": "200ms", "RETRY_MAX": "2"})
	start := time.Now()
	r := do(t, "GET", base+"/users/1", "", "", nil)
	el := time.Since(start)
	calls, _, _ := s2.snapshot()
	if r.status != 504 || calls != 3 || el < 500*time.Millisecond || el > 600*time.Millisecond+500*time.Millisecond {
		t.Fatalf("%d after %s and %d calls; want 504 after about the 600 ms budget, and 3 calls", r.status, el, calls)
	}
}

// TestClientIdempotencyKeyIsPassedOn: a client's valid Idempotency-Key
// reaches service2 on every attempt, unchanged, so that the client's own
// retry finds the first attempt's user; a bad key is refused with a clear
// 400 before service2 is called; without one, service1 makes its own, a
// new one per request.
func TestClientIdempotencyKeyIsPassedOn(t *testing.T) {
	s2 := &fakeService2{fail: 503, failFirst: 1}
	srv := httptest.NewServer(s2)
	defer srv.Close()
	base, _, _ := startService1(t, srv.URL, nil)
	body := `{"first_name":"a","last_name":"b"}`
	for range 2 { // the client's retry: the same key again
		if r := do(t, "POST", base+"/users", "application/json", body, map[string]string{"Idempotency-Key": "client-key_1"}); r.status != 201 {
			t.Fatalf("POST with the client's key: %d %s", r.status, r.body)
		}
	}
	if _, keys, _ := s2.snapshot(); !slices.Equal(keys, []string{"client-key_1", "client-key_1", "client-key_1"}) {
		t.Errorf("service2 saw keys %q; want the client's on each of its attempts (one retried by service1)", keys)
	}
	for _, bad := range []string{"has space", strings.Repeat("k", 65), "é"} {
		r := do(t, "POST", base+"/users", "application/json", body, map[string]string{"Idempotency-Key": bad})
		if r.status != 400 || !strings.Contains(r.body, "Idempotency-Key must be") || !strings.Contains(r.body, `"request_id"`) {
			t.Errorf("key %q: %d %s, want a 400 that names the rule", bad, r.status, r.body)
		}
	}
	if calls, _, _ := s2.snapshot(); calls != 3 {
		t.Errorf("service2 saw %d calls; a bad key must not reach it", calls)
	}
	for range 2 {
		do(t, "POST", base+"/users", "application/json", body, nil)
	}
	if _, keys, _ := s2.snapshot(); len(keys) != 5 || keys[3] == keys[4] || !idempotency.Valid(keys[3]) || keys[3] == "client-key_1" {
		t.Errorf("without a client key, service2 saw %q; want a fresh valid key per request", keys)
	}
}
