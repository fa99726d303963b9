package outage_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/failready/failready/internal/outage"
)

// A relay loop that fails for 90 s and then succeeds writes three lines:
// down, still down after a minute, and back with the outage's length.
func ExampleLog() {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // stable output
		}
		return a
	}}))
	broker := outage.New("nats", outage.Options{Logger: logger, Now: func() time.Time { return now }})
	ctx := context.Background()
	for range 90 {
		broker.Report(ctx, errors.New("nats: timeout"))
		now = now.Add(time.Second)
	}
	broker.Report(ctx, nil)
	// Output:
	// level=WARN msg="dependency down" dependency=nats error="nats: timeout"
	// level=WARN msg="dependency still down" dependency=nats down_for=1m0s failures_since_last_line=60 error="nats: timeout"
	// level=INFO msg="dependency back" dependency=nats down_for=1m30s failures=90
}
