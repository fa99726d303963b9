package retry_test

import (
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
