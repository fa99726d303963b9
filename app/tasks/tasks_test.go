package tasks

import (
	"strings"
	"testing"

	"context"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestMsgIDRoundTrip: the deduplication ID names the outbox row, and the
// worker reads the row's ID back; anything else is refused.
func TestMsgIDRoundTrip(t *testing.T) {
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, MsgID(42))
	if id, err := TaskID(h); id != 42 || err != nil {
		t.Errorf("TaskID(%q) = %d, %v", MsgID(42), id, err)
	}
	for _, bad := range []string{"", "42", "outbox-", "outbox-x", "outbox--1", "outbox-0", "order-42"} {
		h.Set(jetstream.MsgIDHeader, bad)
		if id, err := TaskID(h); err == nil {
			t.Errorf("TaskID(%q) = %d, want an error", bad, id)
		}
	}
}

func TestDecodeWelcome(t *testing.T) {
	if w, err := DecodeWelcome([]byte(`{"user_id":7,"first_name":"ada"}`)); err != nil || w != (Welcome{UserID: 7, FirstName: "ada"}) {
		t.Errorf("got %+v, %v", w, err)
	}
	for _, bad := range []string{`{"user_id":`, `{"first_name":"x"}`, `{"user_id":-1}`, `[]`, ``} {
		if _, err := DecodeWelcome([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "welcome task") {
			t.Errorf("%q: %v, want an error", bad, err)
		}
	}
}

// TestCarrierCarriesTheTrace: the W3C context injected into a message's
// headers comes out the same on the other side.
func TestCarrierCarriesTheTrace(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	prop := propagation.TraceContext{}
	h := nats.Header{}
	prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), Carrier(h))
	if h.Get("traceparent") == "" || len(Carrier(h).Keys()) != 1 {
		t.Fatalf("headers %v", h)
	}
	got := trace.SpanContextFromContext(prop.Extract(context.Background(), Carrier(h)))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Errorf("extracted %v, want %v", got, sc)
	}
}

// TestStreams: the tasks stream is a work queue on disk that remembers a
// Nats-Msg-Id long enough for a relay's retry; dead letters are kept apart.
func TestStreams(t *testing.T) {
	s, d := StreamConfig(), DeadStreamConfig()
	if s.Retention != jetstream.WorkQueuePolicy || s.Storage != jetstream.FileStorage || s.Duplicates < DuplicateWindow ||
		s.Discard != jetstream.DiscardNew || s.Subjects[0] != "tasks.>" {
		t.Errorf("tasks stream %+v", s)
	}
	if d.Retention != jetstream.LimitsPolicy || d.Subjects[0] != DeadPrefix+"tasks.>" || d.MaxAge == 0 {
		t.Errorf("dead-letter stream %+v", d)
	}
	if c := WelcomeConsumer(0, 8); c.MaxDeliver != -1 || c.AckPolicy != jetstream.AckExplicitPolicy || c.FilterSubject != WelcomeSubject {
		t.Errorf("consumer %+v", c)
	}
}
