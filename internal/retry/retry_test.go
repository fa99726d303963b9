package retry_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/failready/failready/internal/retry"
)

func TestBackoffIsCappedExponentialWithFullJitter(t *testing.T) {
	top := retry.Backoff{Base: 10 * time.Millisecond, Cap: 100 * time.Millisecond, Rand: func() float64 { return 0.999999 }}
	bottom := top
	bottom.Rand = func() float64 { return 0 }
	for n, want := range []time.Duration{10, 20, 40, 80, 100, 100} {
		want *= time.Millisecond
		if got := top.Delay(n); got > want || got < want-time.Millisecond {
			t.Errorf("retry %d: max delay %s, want %s", n, got, want)
		}
		if got := bottom.Delay(n); got != 0 {
			t.Errorf("retry %d: full jitter starts at 0, got %s", n, got)
		}
	}
	if d := top.Delay(200); d > top.Cap { // no overflow for absurd n
		t.Errorf("retry 200: %s", d)
	}
	real := retry.Backoff{Base: time.Millisecond, Cap: time.Second}
	for range 100 {
		if d := real.Delay(3); d < 0 || d >= 8*time.Millisecond {
			t.Fatalf("random delay %s out of [0, 8ms)", d)
		}
	}
}

func TestBudgetCapsRetriesAtTheRatio(t *testing.T) {
	b := retry.NewBudget(0.1, 10)
	// Everything fails: each request wants 2 retries.
	retries := 0
	const requests = 1000
	for range requests {
		b.Request()
		for range 2 {
			if b.Retry() {
				retries++
			}
		}
	}
	// 10 tokens to start, then 0.1 per request.
	if max := 10 + requests/10; retries > max || retries < max-1 {
		t.Fatalf("%d retries for %d requests, want about %d", retries, requests, max)
	}
}

func TestBudgetRefills(t *testing.T) {
	b := retry.NewBudget(0.5, 2)
	if n := retries(b, 3); n != 2 {
		t.Fatalf("a full budget of 2 allowed %d of 3 retries, want 2", n)
	}
	b.Request()
	b.Request()
	if n := retries(b, 2); n != 1 {
		t.Fatalf("two requests at 0.5 earned %d retries, want 1", n)
	}
	for range 100 {
		b.Request()
	}
	if n := retries(b, 3); n != 2 {
		t.Fatalf("the budget allowed %d of 3 retries after 100 requests, want max = 2", n)
	}
}

// retries asks the budget for n retries and counts those it allows.
func retries(b *retry.Budget, n int) int {
	allowed := 0
	for range n {
		if b.Retry() {
			allowed++
		}
	}
	return allowed
}

var errTransient, errFinal = errors.New("transient"), errors.New("final")

// failing returns an attempt that fails with errs in turn, then succeeds,
// and the count of attempts made.
func failing(errs ...error) (func(context.Context) error, *int) {
	n := 0
	return func(context.Context) error {
		n++
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	}, &n
}

func noDelay() retry.Backoff {
	return retry.Backoff{Base: time.Millisecond, Cap: time.Millisecond, Rand: func() float64 { return 0 }}
}

func TestDoRetriesTransientFailuresOfIdempotentCalls(t *testing.T) {
	p := retry.Policy{MaxRetries: 2, Backoff: noDelay(), Retryable: func(err error) bool { return err == errTransient }}
	attempt, n := failing(errTransient, errTransient)
	var retries []int
	err := p.Do(context.Background(), retry.Call{Idempotent: true, Attempt: attempt,
		OnRetry: func(a int, err error, _ time.Duration) {
			if err != errTransient {
				t.Errorf("OnRetry after %v", err)
			}
			retries = append(retries, a)
		}})
	if err != nil || *n != 3 || !slices.Equal(retries, []int{2, 3}) {
		t.Fatalf("err %v after %d attempts, retries %v; want success on attempt 3 after retries [2 3]", err, *n, retries)
	}
}

func TestDoStops(t *testing.T) {
	retryable := func(err error) bool { return err == errTransient }
	for _, tc := range []struct {
		name       string
		policy     retry.Policy
		idempotent bool
		errs       []error
		ctx        func() (context.Context, context.CancelFunc)
		attempts   int
		err        error
		denied     string
	}{
		{name: "not idempotent", idempotent: false, errs: []error{errTransient}, attempts: 1, err: errTransient,
			policy: retry.Policy{MaxRetries: 2, Backoff: noDelay(), Retryable: retryable}},
		{name: "not transient", idempotent: true, errs: []error{errFinal}, attempts: 1, err: errFinal,
			policy: retry.Policy{MaxRetries: 2, Backoff: noDelay(), Retryable: retryable}},
		{name: "no retries left", idempotent: true, errs: []error{errTransient, errTransient, errTransient, errTransient}, attempts: 3, err: errTransient,
			policy: retry.Policy{MaxRetries: 2, Backoff: noDelay(), Retryable: retryable}},
		{name: "nil Retryable retries all", idempotent: true, errs: []error{errFinal}, attempts: 2,
			policy: retry.Policy{MaxRetries: 2, Backoff: noDelay()}},
		{name: "budget spent", idempotent: true, errs: []error{errTransient, errTransient}, attempts: 2, err: errTransient, denied: retry.DeniedBudget,
			policy: retry.Policy{MaxRetries: 2, Backoff: noDelay(), Retryable: retryable, Budget: retry.NewBudget(0, 1)}},
		{name: "deadline too close", idempotent: true, errs: []error{errTransient}, attempts: 1, err: errTransient, denied: retry.DeniedDeadline,
			policy: retry.Policy{MaxRetries: 2, Backoff: noDelay(), Retryable: retryable, MinTimeLeft: time.Hour},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Minute)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			attempt, n := failing(tc.errs...)
			denied := ""
			err := tc.policy.Do(ctx, retry.Call{Idempotent: tc.idempotent, Attempt: attempt, OnDenied: func(r string) { denied = r }})
			if err != tc.err || *n != tc.attempts || denied != tc.denied {
				t.Fatalf("err %v, %d attempts, denied %q; want %v, %d, %q", err, *n, denied, tc.err, tc.attempts, tc.denied)
			}
		})
	}
}

func TestDoEndsWithTheContextDuringABackoff(t *testing.T) {
	p := retry.Policy{MaxRetries: 5, Backoff: retry.Backoff{Base: time.Hour, Cap: time.Hour, Rand: func() float64 { return 0.5 }}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	attempt, n := failing(errTransient, errTransient)
	start := time.Now()
	if err := p.Do(ctx, retry.Call{Idempotent: true, Attempt: attempt}); err != errTransient || *n != 1 {
		t.Fatalf("err %v after %d attempts; want the first failure", err, *n)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Do returned %s after the context ended", took)
	}
}

func TestDoEarnsTheBudgetOnEveryCall(t *testing.T) {
	b := retry.NewBudget(0.5, 10)
	for retries(b, 10) > 0 { // empty it
	}
	p := retry.Policy{Budget: b}
	for range 4 { // not idempotent: no retry, but each call earns 0.5
		_ = p.Do(context.Background(), retry.Call{Attempt: func(context.Context) error { return errFinal }})
	}
	if n := retries(b, 3); n != 2 {
		t.Fatalf("4 calls at 0.5 earned %d retries, want 2", n)
	}
}
