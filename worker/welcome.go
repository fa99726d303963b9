// The welcome task: "send the welcome message" (the demo's stand-in: a
// configurable latency and failure rate), then one row in welcome_messages
// keyed by the task's ID. A task delivered again (its ack lost, its worker
// killed mid-task) finds its row and is done: at-least-once delivery,
// exactly-once effect. The worker's MySQL user may only read and insert
// that table.

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/internal/consumer"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing"
)

// welcome does welcome tasks.
type welcome struct {
	db           *sql.DB
	queryTimeout time.Duration
	latency      time.Duration
	failureRate  float64
	tr           tracing.Tracing
	tracer       trace.Tracer
	logger       *slog.Logger
	metrics      *metrics.Client
	took         exemplars.Latency // the process span's duration, its trace the exemplar
	tookAttrs    *exemplars.Attrs[processKey]
}

// TaskProcessDuration is the OpenTelemetry histogram of a delivery's
// handling, as the semantic conventions for messaging name it.
const TaskProcessDuration = "messaging.process.duration"

type processKey struct{ subject, errorType string }

func processAttrs() *exemplars.Attrs[processKey] {
	return exemplars.NewAttrs(100, func(k processKey) []attribute.KeyValue {
		kv := []attribute.KeyValue{attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.name", "process"), attribute.String("messaging.destination.name", k.subject)}
		if k.errorType != "" {
			kv = append(kv, attribute.String("error.type", k.errorType))
		}
		return kv
	})
}

// errSimulated is the demo's failure of the welcome message's sending: a
// transient error, retried.
var errSimulated = errors.New("welcome message not sent: the mail service failed (simulated)")

// handle is the consumer's handler: the task's span (a child of the publish
// in service2, from the message's headers), its request ID in the context
// (so the log lines carry it), then the work.
func (w *welcome) handle(ctx context.Context, msg jetstream.Msg) (err error) {
	h := msg.Headers()
	ctx = w.tr.Propagator.Extract(ctx, tasks.Carrier(h))
	rid := h.Get(tasks.HeaderRequestID)
	if rid != "" {
		ctx = requestid.NewContext(ctx, rid)
	}
	start := time.Now()
	ctx, span := w.tracer.Start(ctx, msg.Subject()+" process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.message.id", h.Get(jetstream.MsgIDHeader)), attribute.String(tracing.RequestIDKey, rid)))
	defer func() {
		errorType := ""
		if err != nil {
			tracing.Fail(span, err)
			w.logger.WarnContext(ctx, "task failed", "task", msg.Subject(), "error", err.Error())
			errorType = "transient"
			if errors.Is(err, consumer.ErrPoison) {
				errorType = "poison"
			}
		}
		w.took.Record(ctx, time.Since(start), w.tookAttrs.Get(processKey{msg.Subject(), errorType}))
		span.End()
	}()
	if md, mdErr := msg.Metadata(); mdErr == nil {
		span.SetAttributes(attribute.Int64("messaging.nats.delivered", int64(md.NumDelivered)))
		// The queue wait: from the outbox row's creation to this delivery.
		if created, perr := time.Parse(time.RFC3339Nano, h.Get(tasks.HeaderCreated)); perr == nil {
			span.SetAttributes(attribute.Float64("task.wait_ms", float64(md.Timestamp.Sub(created).Microseconds())/1000))
		}
	}
	taskID, err := tasks.TaskID(h)
	if err != nil {
		return fmt.Errorf("%w: %v", consumer.ErrPoison, err)
	}
	t, err := tasks.DecodeWelcome(msg.Data())
	if err != nil {
		return fmt.Errorf("%w: %v", consumer.ErrPoison, err)
	}
	if err := w.send(ctx); err != nil {
		return err
	}
	if err := w.record(ctx, taskID, t.UserID); err != nil {
		return err
	}
	// Done: from the user's creation to here.
	if created, perr := time.Parse(time.RFC3339Nano, h.Get(tasks.HeaderCreated)); perr == nil {
		w.metrics.Timing(metrics.TaskEndToEnd, time.Since(created), []string{"task:" + msg.Subject()})
	}
	return nil
}

// send is the demo's welcome message: it takes TASK_LATENCY and fails at
// TASK_FAILURE_RATE.
func (w *welcome) send(ctx context.Context) error {
	select {
	case <-time.After(w.latency):
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.failureRate > 0 && rand.Float64() < w.failureRate {
		return errSimulated
	}
	return nil
}

// record writes the task's one row; a row already there means the task was
// done before (its ack was lost): done, not an error.
func (w *welcome) record(ctx context.Context, taskID, userID int64) error {
	ctx, cancel := context.WithTimeout(ctx, w.queryTimeout)
	defer cancel()
	_, err := w.db.ExecContext(ctx,
		"INSERT INTO welcome_messages (task_id, user_id, sent_at) VALUES (?, ?, UTC_TIMESTAMP(6))", taskID, userID)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 {
		w.logger.InfoContext(ctx, "task already done: its welcome message exists", "task_id", taskID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording the welcome message: %w", err)
	}
	w.logger.InfoContext(ctx, "welcome message sent", "task_id", taskID, "user_id", userID)
	return nil
}

// deadLetter keeps a dead task in the dead-letter stream, its headers and
// body as they were, with the reason and the delivery count; deduplicated
// by the task's ID.
func deadLetter(js jetstream.JetStream) func(context.Context, jetstream.Msg, string, uint64) error {
	return func(ctx context.Context, msg jetstream.Msg, reason string, delivered uint64) error {
		dead := &nats.Msg{Subject: tasks.DeadPrefix + msg.Subject(), Data: msg.Data(), Header: nats.Header{}}
		for k, v := range msg.Headers() {
			if k != jetstream.MsgIDHeader {
				dead.Header[k] = v
			}
		}
		dead.Header.Set(tasks.HeaderDeadReason, reason)
		dead.Header.Set(tasks.HeaderDeadDeliveries, fmt.Sprint(delivered))
		_, err := js.PublishMsg(ctx, dead, jetstream.WithMsgID("dead-"+msg.Headers().Get(jetstream.MsgIDHeader)))
		return err
	}
}
