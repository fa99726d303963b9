package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/failready/failready/internal/retry"
)

// A call that fails twice with a transient error is retried, after a short
// jittered backoff, and succeeds on its third attempt.
func ExamplePolicy_Do() {
	p := retry.Policy{MaxRetries: 2, Backoff: retry.Backoff{Base: time.Millisecond, Cap: 5 * time.Millisecond}}
	calls := 0
	err := p.Do(context.Background(), retry.Call{
		Idempotent: true, // a GET, or a POST with an idempotency key
		Attempt: func(ctx context.Context) error {
			if calls++; calls < 3 {
				return errors.New("connection refused")
			}
			return nil
		},
		OnRetry: func(attempt int, err error, _ time.Duration) { fmt.Printf("attempt %d after: %v\n", attempt, err) },
	})
	fmt.Println("calls:", calls, "error:", err)
	// Output:
	// attempt 2 after: connection refused
	// attempt 3 after: connection refused
	// calls: 3 error: <nil>
}
