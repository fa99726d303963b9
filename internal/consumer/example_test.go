package consumer_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/failready/failready/internal/consumer"
)

// What becomes of a delivered task: done, tried again with a backoff, dead
// (a poison task at once, any other after its last delivery), or given
// back by a worker that is stopping.
func ExampleDecide() {
	failed := errors.New("mysql: connection refused")
	poison := fmt.Errorf("%w: no user_id", consumer.ErrPoison)
	fmt.Println(consumer.Decide(nil, 1, 5, false))
	fmt.Println(consumer.Decide(failed, 1, 5, false), consumer.Backoff(1))
	fmt.Println(consumer.Decide(failed, 5, 5, false))
	fmt.Println(consumer.Decide(poison, 1, 5, false))
	fmt.Println(consumer.Decide(context.Canceled, 1, 5, true))
	// Output:
	// ack
	// retry 1s
	// dead_letter
	// dead_letter
	// give_back
}
