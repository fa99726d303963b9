package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/failready/failready/internal/breaker"
)

// Two failures in a row open the breaker: the third call is refused at once,
// without reaching the dependency, and the change is reported.
func ExampleBreaker_Allow() {
	b := breaker.New(breaker.Settings{Name: "service2", ConsecutiveFailures: 2, FailureRatio: 1, MinRequests: 100,
		Window: time.Minute, OpenFor: time.Minute, HalfOpenProbes: 1},
		func(_ context.Context, from, to string) { fmt.Println("breaker:", from, "->", to) })
	for range 3 {
		done, err := b.Allow(context.Background())
		if err != nil {
			fmt.Println("refused:", errors.Is(err, breaker.ErrOpen))
			continue
		}
		done(true) // the call failed
	}
	fmt.Println("state:", b.State())
	// Output:
	// breaker: closed -> open
	// refused: true
	// state: open
}
