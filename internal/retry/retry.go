// Package retry retries failed calls safely: a loop (Policy.Do) with capped
// exponential backoff and full jitter, a retry budget, and the deadline in
// mind.
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
// And Policy.Do never retries a call that is not idempotent (a POST without
// an idempotency key may already have happened), a failure that is not
// transient (a 4xx will fail again; a circuit breaker's refusal is the
// breaker saying "not now"), nor when the context's deadline would not leave
// a useful part of an attempt after the backoff.
//
// Depends on: the standard library only. The caller classifies its errors
// (Policy.Retryable) and observes the loop through hooks (a counter, a span
// event), so this package needs neither metrics nor tracing.
//
// Tests use: go.uber.org/goleak.
package retry

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Policy says whether, when and how often a failed call is tried again. One
// Policy serves every call of a client (its Budget is shared by them).
type Policy struct {
	MaxRetries int // retries after the first attempt
	Backoff    Backoff
	Budget     *Budget // nil: retries are not budgeted
	// MinTimeLeft: a retry is made only when the context's deadline leaves
	// at least this much after the backoff (service1: a quarter of an
	// attempt's timeout); a retry with less would time out anyway.
	MinTimeLeft time.Duration
	// Retryable reports a transient failure, worth another attempt; nil
	// retries every error.
	Retryable func(error) bool
}

// Reasons a wanted retry was not made, as passed to Call.OnDenied.
const (
	DeniedDeadline = "deadline"
	DeniedBudget   = "budget"
)

// Call is one logical call: its attempt and what observes it. The hooks
// may be nil.
type Call struct {
	// Idempotent calls may be retried: a GET, or a POST that carries an
	// idempotency key (the same on every attempt).
	Idempotent bool
	// Attempt makes one attempt (bounding it by its own timeout if it has
	// one).
	Attempt func(ctx context.Context) error
	// OnRetry runs before the backoff of each retry: attempt is the number
	// of the attempt to come (2 for the first retry), err the failure that
	// caused it.
	OnRetry func(attempt int, err error, delay time.Duration)
	// OnDenied runs when a retry was wanted but not made (DeniedDeadline,
	// DeniedBudget).
	OnDenied func(reason string)
}

// Do makes the call's attempts: the first, then a retry after each
// transient failure of an idempotent call, while retries are left, the
// budget allows one and the deadline leaves room. It returns nil, or the last
// attempt's error (also when ctx ends during a backoff).
func (p *Policy) Do(ctx context.Context, c Call) error {
	if p.Budget != nil {
		p.Budget.Request() // every call earns, retried or not
	}
	for n := 0; ; n++ {
		err := c.Attempt(ctx)
		if err == nil || !c.Idempotent || n == p.MaxRetries || ctx.Err() != nil ||
			(p.Retryable != nil && !p.Retryable(err)) {
			return err
		}
		delay := p.Backoff.Delay(n)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay+p.MinTimeLeft {
			c.denied(DeniedDeadline)
			return err
		}
		if p.Budget != nil && !p.Budget.Retry() {
			c.denied(DeniedBudget)
			return err
		}
		if c.OnRetry != nil {
			c.OnRetry(n+2, err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err // the deadline ran out during the backoff
		}
	}
}

func (c Call) denied(reason string) {
	if c.OnDenied != nil {
		c.OnDenied(reason)
	}
}

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
