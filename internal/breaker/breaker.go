// Package breaker is a circuit breaker (sony/gobreaker) for calls to one
// dependency, with its state made visible.
//
// Closed, it lets calls through and counts failures. After ConsecutiveFailures
// failures in a row, or a FailureRatio of at least MinRequests calls within a
// Window, it opens: calls fail at once, without touching the network, for
// OpenFor. Then it half-opens and lets HalfOpenProbes calls through: if they
// succeed it closes, if one fails it opens again. A dependency that is down
// stops costing its callers a timeout each, and gets room to come back.
//
// Depends on: github.com/sony/gobreaker/v2.
//
// Tests use: go.uber.org/goleak.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Settings of a breaker.
type Settings struct {
	Name                string // the dependency, in logs and metrics
	ConsecutiveFailures uint32
	FailureRatio        float64
	MinRequests         uint32
	Window              time.Duration // the closed state's counting window
	OpenFor             time.Duration
	HalfOpenProbes      uint32
}

// States, as logged and tagged.
const (
	Closed   = "closed"
	HalfOpen = "half-open"
	Open     = "open"
)

// ErrOpen is returned, wrapped, when the breaker refuses a call.
var ErrOpen = errors.New("circuit breaker open")

// Breaker guards calls to one dependency. Safe for concurrent use.
type Breaker struct {
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	openFor time.Duration

	mu       sync.Mutex
	openedAt time.Time
	changed  [][2]string // transitions not yet reported: from, to
	onChange func(ctx context.Context, from, to string)
}

// New returns a closed breaker. onChange is called on every state change,
// with the context of the call that caused it (so that its log line carries
// that request's ID), once that call's Allow or done returns; it must not
// call the breaker.
func New(s Settings, onChange func(ctx context.Context, from, to string)) *Breaker {
	b := &Breaker{openFor: s.OpenFor, onChange: onChange}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.Name,
		MaxRequests: s.HalfOpenProbes,
		Interval:    s.Window,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= s.ConsecutiveFailures ||
				(c.Requests >= s.MinRequests && float64(c.TotalFailures) >= s.FailureRatio*float64(c.Requests))
		},
		// gobreaker calls this under its own lock, from the goroutine whose
		// call caused the change, without that call's context: the change is
		// queued here and reported by that goroutine as soon as gobreaker
		// returns (report).
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if to == gobreaker.StateOpen {
				b.openedAt = time.Now()
			}
			b.changed = append(b.changed, [2]string{name(from), name(to)})
		},
	})
	return b
}

// report calls onChange for the state changes queued so far, with ctx.
func (b *Breaker) report(ctx context.Context) {
	b.mu.Lock()
	changed := b.changed
	b.changed = nil
	b.mu.Unlock()
	if b.onChange != nil {
		for _, c := range changed {
			b.onChange(ctx, c[0], c[1])
		}
	}
}

func name(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}

// Allow asks to make a call for ctx's request. When the breaker refuses,
// err wraps ErrOpen; otherwise the caller must call done with whether the
// call failed.
func (b *Breaker) Allow(ctx context.Context) (done func(failed bool), err error) {
	report, err := b.cb.Allow()
	b.report(ctx) // an open breaker whose wait is over half-opens here
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrOpen, err)
	}
	return func(failed bool) {
		if failed {
			report(errors.New("failed"))
		} else {
			report(nil)
		}
		b.report(ctx) // the outcome may trip or close it
	}, nil
}

// State is Closed, HalfOpen or Open.
func (b *Breaker) State() string { return name(b.cb.State()) }

// RetryAfter is how long until an open breaker half-opens (at least 1s, for
// a Retry-After header), or 0 when it is not open.
func (b *Breaker) RetryAfter() time.Duration {
	if b.cb.State() != gobreaker.StateOpen {
		return 0
	}
	b.mu.Lock()
	left := time.Until(b.openedAt.Add(b.openFor))
	b.mu.Unlock()
	return max(left.Round(time.Second), time.Second)
}
