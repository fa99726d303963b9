// The welcome task: recorded in the outbox in the transaction that creates
// the user (store.go), and published to NATS JetStream by the outbox relay
// (internal/outbox), with the outbox row's ID as Nats-Msg-Id so that a
// second publish of a row is stored once. The request's ID and trace
// context travel with the task: in the row's headers, then the message's,
// so that the worker's span is a child of this publish, itself a child of
// the POST /users that created the user.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/outbox"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing"
)

// welcomeTask is the task recorded for a new user: its body, and the
// headers that carry the request ID, the creation time and the trace
// context to the worker.
func welcomeTask(ctx context.Context, prop propagation.TextMapPropagator, u user.User) ([]byte, map[string]string, error) {
	body, err := json.Marshal(tasks.Welcome{UserID: u.ID, FirstName: u.FirstName})
	if err != nil {
		return nil, nil, err
	}
	h := map[string]string{tasks.HeaderCreated: time.Now().UTC().Format(time.RFC3339Nano)}
	if id := requestid.FromContext(ctx); id != "" {
		h[tasks.HeaderRequestID] = id
	}
	prop.Inject(ctx, propagation.MapCarrier(h))
	return body, h, nil
}

var errNATSDown = errors.New("nats not connected")

// publishTimeout bounds one publish: NATS answers in milliseconds, or is
// not there, and then the row waits for the next pass.
const publishTimeout = 2 * time.Second

// natsPublisher publishes outbox rows to JetStream. It connects in the
// background and keeps reconnecting: with NATS down the service starts and
// serves, its rows wait, and they leave when NATS is back.
type natsPublisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	tr       tracing.Tracing
	tracer   trace.Tracer
	declared bool // the streams exist (declared once per connection life)
	logger   *slog.Logger
}

func newNATSPublisher(url string, tr tracing.Tracing, logger *slog.Logger) (*natsPublisher, error) {
	nc, err := tasks.Connect(url, "service2", logger)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsPublisher{nc: nc, js: js, tr: tr, tracer: tr.Tracer("failready/service2"), logger: logger}, nil
}

// publish sends one row (the relay calls it, one pass at a time).
func (p *natsPublisher) publish(ctx context.Context, r outbox.Row) error {
	if !p.nc.IsConnected() {
		return errNATSDown // at once: the row waits, and the pass holds its lock no longer
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if !p.declared {
		if err := tasks.DeclareStreams(ctx, p.js); err != nil {
			return err
		}
		p.declared = true
	}
	// The publish span, a child of the request that recorded the task.
	parent := p.tr.Propagator.Extract(context.Background(), propagation.MapCarrier(r.Headers))
	ctx, span := p.tracer.Start(trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(parent)), r.Topic+" publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", r.Topic), attribute.String("messaging.message.id", tasks.MsgID(r.ID)),
			attribute.String(tracing.RequestIDKey, r.Headers[tasks.HeaderRequestID])))
	defer span.End()
	msg := nats.NewMsg(r.Topic)
	msg.Data = r.Payload
	for k, v := range r.Headers {
		msg.Header.Set(k, v)
	}
	p.tr.Propagator.Inject(ctx, tasks.Carrier(msg.Header)) // the worker's parent: this span
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(tasks.MsgID(r.ID))); err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			p.declared = false // a NATS that lost its streams: declare them again
		}
		tracing.Fail(span, err)
		return err
	}
	return nil
}

// close closes the connection (after the relay has stopped: every publish
// is synchronous, so none is in flight).
func (p *natsPublisher) close() { p.nc.Close() }

// outboxMetrics reports the relay's passes: what was published, and the
// passes a failed publish stopped.
func outboxMetrics(m *metrics.Client) func(outbox.Stats) {
	return func(st outbox.Stats) {
		m.Count(metrics.OutboxPublished, int64(st.Published), nil)
		if st.Failed {
			m.Count(metrics.OutboxPublishFailures, 1, nil)
		}
	}
}

// backlogCollector samples, every report interval, the outbox's rows not
// yet published and the age of the oldest (what an alert on a stuck outbox
// watches); with MySQL away, no sample rather than a false zero.
func backlogCollector(r *outbox.Relay) metrics.Collector {
	return func(m *metrics.Client) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, oldest, err := r.Backlog(ctx)
		if err != nil {
			return
		}
		m.Gauge(metrics.OutboxBacklog, float64(n), nil)
		m.Gauge(metrics.OutboxOldestAge, oldest.Seconds(), nil)
	}
}
