package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/internal/consumer"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/tracing"
)

type msg struct {
	jetstream.Msg
	h    nats.Header
	data string
}

func (m msg) Headers() nats.Header { return m.h }
func (m msg) Data() []byte         { return []byte(m.data) }
func (m msg) Subject() string      { return tasks.WelcomeSubject }
func (m msg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1, Timestamp: time.Now()}, nil
}

// TestWelcomeDecidesBeforeTheDatabase: what the handler can tell without
// MySQL: a task without its outbox ID, or whose body does not parse or names
// no user, is poison (dead-lettered at once, never retried); the demo's
// simulated failure is transient (retried). (The write and its exactly-once
// effect are in make e2e, against MariaDB.)
func TestWelcomeDecidesBeforeTheDatabase(t *testing.T) {
	m := metrics.New(metrics.Options{})
	defer m.Close()
	reader := sdkmetric.NewManualReader()
	took, err := exemplars.NewLatency(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), TaskProcessDuration, "test")
	if err != nil {
		t.Fatal(err)
	}
	w := &welcome{latency: time.Millisecond, failureRate: 1, tr: tracing.Disabled(), tracer: tracing.Disabled().Tracer("t"),
		logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics: m, took: took, tookAttrs: processAttrs()}
	withID := func(id string) nats.Header {
		h := nats.Header{}
		if id != "" {
			h.Set(jetstream.MsgIDHeader, id)
		}
		return h
	}
	for _, c := range []struct {
		name string
		m    msg
		want error
	}{
		{"no outbox ID", msg{h: withID(""), data: `{"user_id":1}`}, consumer.ErrPoison},
		{"a foreign ID", msg{h: withID("order-7"), data: `{"user_id":1}`}, consumer.ErrPoison},
		{"not JSON", msg{h: withID("outbox-7"), data: `{"user_id":`}, consumer.ErrPoison},
		{"no user", msg{h: withID("outbox-7"), data: `{"first_name":"x"}`}, consumer.ErrPoison},
		{"the mail service fails", msg{h: withID("outbox-7"), data: `{"user_id":1}`}, errSimulated},
	} {
		err := w.handle(context.Background(), c.m)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if d := consumer.Decide(err, 1, 5, false); (c.want == consumer.ErrPoison) != (d == consumer.DeadLetter) {
			t.Errorf("%s: decided %v", c.name, d)
		}
	}
	// Every delivery is in the OpenTelemetry histogram, by its error's type.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, dp := range rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints {
		e, _ := dp.Attributes.Value("error.type")
		d, _ := dp.Attributes.Value("messaging.destination.name")
		counts[d.AsString()+" "+e.AsString()] = dp.Count
	}
	if want := map[string]uint64{tasks.WelcomeSubject + " poison": 4, tasks.WelcomeSubject + " transient": 1}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("%s: %v, want %v", TaskProcessDuration, counts, want)
	}
}
