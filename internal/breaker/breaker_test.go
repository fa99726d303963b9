package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failready/failready/internal/breaker"
)

var settings = breaker.Settings{
	Name: "dep", ConsecutiveFailures: 3, FailureRatio: 0.5, MinRequests: 10,
	Window: 10 * time.Second, OpenFor: 5 * time.Second, HalfOpenProbes: 1,
}

type callID struct{}

// calls numbers the calls of a test: call1, call2, ...
var calls int

func call(t *testing.T, b *breaker.Breaker, fail bool) error {
	t.Helper()
	calls++
	done, err := b.Allow(context.WithValue(context.Background(), callID{}, fmt.Sprintf("call%d", calls)))
	if err != nil {
		return err
	}
	done(fail)
	return nil
}

// TestLifecycle runs on a fake clock (testing/synctest): closed → open after
// 3 failures in a row → fails fast → half-open after OpenFor → closed after a
// good probe; and a failed probe opens it again. Each change is reported with
// the context of the call it happened in (its request ID, in a service).
func TestLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls = 0
		var changes []string
		b := breaker.New(settings, func(ctx context.Context, from, to string) {
			changes = append(changes, fmt.Sprintf("%s>%s@%v", from, to, ctx.Value(callID{})))
		})

		for range 2 {
			if call(t, b, true) != nil {
				t.Fatal("refused while closed")
			}
		}
		if b.State() != breaker.Closed {
			t.Fatal("opened before 3 failures")
		}
		_ = call(t, b, true)
		if b.State() != breaker.Open {
			t.Fatalf("state %s after 3 failures", b.State())
		}
		if err := call(t, b, false); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("open breaker let a call through: %v", err)
		}
		if ra := b.RetryAfter(); ra != 5*time.Second {
			t.Fatalf("RetryAfter %s, want 5s", ra)
		}
		time.Sleep(3 * time.Second)
		if ra := b.RetryAfter(); ra != 2*time.Second {
			t.Fatalf("RetryAfter %s after 3s, want 2s", ra)
		}
		time.Sleep(2*time.Second + time.Millisecond)
		if b.State() != breaker.HalfOpen {
			t.Fatalf("state %s after OpenFor", b.State())
		}
		// One probe at a time.
		done, err := b.Allow(context.WithValue(context.Background(), callID{}, "probe"))
		if err != nil {
			t.Fatal(err)
		}
		if err := call(t, b, false); !errors.Is(err, breaker.ErrOpen) {
			t.Fatal("a second concurrent probe was let through")
		}
		done(true) // the probe fails: open again
		if b.State() != breaker.Open {
			t.Fatalf("state %s after a failed probe", b.State())
		}
		time.Sleep(5*time.Second + time.Millisecond)
		if call(t, b, false) != nil || b.State() != breaker.Closed {
			t.Fatalf("state %s after a good probe", b.State())
		}
		// open>half-open happened in b.State() above, outside any call: it is
		// reported with the next call, the probe.
		want := "closed>open@call3,open>half-open@probe,half-open>open@probe,open>half-open@call6,half-open>closed@call6"
		if got := join(changes); got != want {
			t.Fatalf("changes %s, want %s", got, want)
		}
	})
}

func TestOpensOnFailureRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(settings, nil)
		// Alternating: never 3 in a row, but half of 10 fail (the 10th too:
		// the ratio is checked on a failure).
		for i := range 10 {
			_ = call(t, b, i%2 == 1)
		}
		if b.State() != breaker.Open {
			t.Fatalf("state %s at a 50%% failure ratio", b.State())
		}
	})
}

func TestWindowForgetsOldFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New(settings, nil)
		_ = call(t, b, true)
		_ = call(t, b, true)
		time.Sleep(11 * time.Second) // a new window
		_ = call(t, b, true)
		if b.State() != breaker.Closed {
			t.Fatalf("failures from an old window counted: %s", b.State())
		}
	})
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
