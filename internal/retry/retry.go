// Package retry holds the two pieces of a safe retry policy: capped
// exponential backoff with full jitter, and a retry budget.
//
// Retries turn a brief blip into a success, and a sustained outage into an
// attack: with 2 retries per call, a failing dependency sees three times the
// traffic just when it can take least. So:
//   - Backoff spreads retries out: a random delay in [0, min(Cap, Base·2^n)]
//     ("full jitter"), so that the callers failed by one blip do not all come
//     back at the same instant;
//   - Budget caps retries at a fraction of the requests (every request
//     deposits Ratio tokens, every retry spends one), so that retries add at
//     most that fraction on top of the traffic, whatever fails.
//
// The caller also never retries past its deadline, retries only idempotent
// calls, and not while its circuit breaker is open.
package retry

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff computes the delay before a retry.
type Backoff struct {
	Base, Cap time.Duration
	Rand      func() float64 // in [0, 1); rand.Float64 when nil (tests inject their own)
}

// Delay is the wait before retry number n (0 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	ceiling := b.Cap
	if n < 30 && b.Base<<n < b.Cap && b.Base<<n > 0 {
		ceiling = b.Base << n
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(ceiling))
}

// Budget is a token bucket for retries.
type Budget struct {
	mu     sync.Mutex
	tokens float64
	ratio  float64
	max    float64
}

// NewBudget allows retries of about ratio of the requests (0.1 = 10 %),
// holding at most max tokens; it starts full, so that a quiet service can
// still retry a first failure.
func NewBudget(ratio, max float64) *Budget {
	return &Budget{tokens: max, ratio: ratio, max: max}
}

// Request records a request (a first attempt): it earns ratio tokens.
func (b *Budget) Request() {
	b.mu.Lock()
	b.tokens = min(b.max, b.tokens+b.ratio)
	b.mu.Unlock()
}

// Retry spends a token for a retry, and reports false when there is none.
func (b *Budget) Retry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
