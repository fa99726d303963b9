// Package tasks is the contract between the producer of tasks (service2,
// which records a task in its outbox in the transaction that creates a
// user, then publishes it) and their consumer (the worker): the JetStream
// streams and subjects, the message (a small JSON body; the request ID, the
// creation time and the W3C trace context in its headers), the
// deduplication ID, and the dead-letter format. Both sides declare the
// streams with DeclareStreams, so either may start first.
//
// Depends on: github.com/nats-io/nats.go (its jetstream package),
// internal/outage (NATS away is logged once, not per reconnect).
//
// Tests use: go.opentelemetry.io/otel.
package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/internal/outage"
)

// The streams and subjects.
const (
	// Stream holds the tasks to do: a work queue, so a task acknowledged by
	// the worker is gone from it.
	Stream = "TASKS"
	// WelcomeSubject is the one task of the demo: send a new user a welcome
	// message.
	WelcomeSubject = "tasks.welcome"
	// DeadStream keeps the tasks the worker gave up on, with the reason,
	// for a person to look at: never silently dropped.
	DeadStream = "TASKS_DEAD"
	// DeadPrefix goes before a dead task's subject.
	DeadPrefix = "dead."
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id: a task
	// published again within it (a relay that died between publishing and
	// marking its row) is stored once.
	DuplicateWindow = 10 * time.Minute
)

// The message headers (besides traceparent, tracestate and baggage, which
// the W3C propagator writes).
const (
	HeaderRequestID = "X-Request-Id"
	// HeaderCreated is when the outbox row was written (RFC 3339, UTC): the
	// start of the task's end-to-end latency.
	HeaderCreated = "Task-Created"
	// HeaderDeadReason says why a task is in DeadStream; HeaderDeadDeliveries
	// how many times it was delivered.
	HeaderDeadReason     = "Dead-Reason"
	HeaderDeadDeliveries = "Dead-Deliveries"
)

// StreamConfig is the tasks stream: on disk, a work queue, a task kept at
// most a week (a worker down for longer is an incident of its own).
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       Stream,
		Subjects:   []string{"tasks.>"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: DuplicateWindow,
		MaxAge:     7 * 24 * time.Hour,
		MaxBytes:   256 << 20,
		Discard:    jetstream.DiscardNew, // full: the publish fails and the outbox row waits
	}
}

// DeclareStreams creates or updates the tasks stream and the dead-letter
// stream: the one declaration of both, which the producer and the consumer
// each make, so that either may start first.
func DeclareStreams(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range []jetstream.StreamConfig{StreamConfig(), DeadStreamConfig()} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// DeadStreamConfig is the dead-letter stream: kept 30 days, 100 000 tasks
// at most.
func DeadStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      DeadStream,
		Subjects:  []string{DeadPrefix + "tasks.>"},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		MaxAge:    30 * 24 * time.Hour,
		MaxMsgs:   100_000,
	}
}

// MsgID is the Nats-Msg-Id of the task recorded in outbox row id.
func MsgID(outboxID int64) string { return "outbox-" + strconv.FormatInt(outboxID, 10) }

// TaskID reads the outbox row ID back from a task's Nats-Msg-Id.
func TaskID(h nats.Header) (int64, error) {
	id := h.Get(jetstream.MsgIDHeader)
	s, ok := strings.CutPrefix(id, "outbox-")
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("Nats-Msg-Id %q is not outbox-<id>", id)
	}
	return n, nil
}

// Welcome is the welcome task's body.
type Welcome struct {
	UserID    int64  `json:"user_id"`
	FirstName string `json:"first_name"`
}

// DecodeWelcome parses a welcome task's body: an error means the task can
// never succeed (it does not parse, or names no user).
func DecodeWelcome(data []byte) (Welcome, error) {
	var w Welcome
	if err := json.Unmarshal(data, &w); err != nil {
		return w, fmt.Errorf("welcome task: %v", err)
	}
	if w.UserID <= 0 {
		return w, errors.New("welcome task: no user_id")
	}
	return w, nil
}

// Carrier lets OpenTelemetry's propagator read and write the trace context
// in a message's headers (there is no official OTel instrumentation for
// NATS): inject on publish, extract on consume.
type Carrier nats.Header

// Get returns a header's first value.
func (c Carrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets a header.
func (c Carrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the headers.
func (c Carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// WelcomeConsumer is the worker's durable pull consumer of welcome tasks:
// explicit acks, a task handed out again when not acknowledged within
// ackWait, and no MaxDeliver of JetStream's own (the worker counts
// deliveries and dead-letters a task itself: internal/consumer).
func WelcomeConsumer(ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       "welcome",
		Description:   "the worker: welcome messages",
		FilterSubject: WelcomeSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	}
}

// Connect connects to NATS the way a service that must never wait on it
// does: it returns at once, connected or not (RetryOnFailedConnect), and
// keeps reconnecting every second for ever. Losing NATS is logged once,
// while it stays away once a minute, and finding it again once, with how
// long it was gone (internal/outage), not once per attempt. Publishes and
// fetches fail while it is away; what the caller does then (an outbox row
// waits, a fetch is tried again) is the caller's decision.
func Connect(url, name string, logger *slog.Logger) (*nats.Conn, error) {
	away := outage.New("nats", outage.Options{Logger: logger})
	ctx := context.Background()
	return nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				away.Failed(ctx, err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { away.Failed(ctx, err) }),
		nats.ConnectHandler(func(*nats.Conn) { away.Up(ctx) }),
		nats.ReconnectHandler(func(*nats.Conn) { away.Up(ctx) }),
	)
}
