package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDecide(t *testing.T) {
	transient := errors.New("db down")
	poison := fmt.Errorf("%w: no user_id", ErrPoison)
	for _, c := range []struct {
		err       error
		delivered uint64
		stopping  bool
		want      Decision
	}{
		{nil, 1, false, Ack},
		{nil, 5, true, Ack},
		{transient, 1, false, Retry},
		{transient, 4, false, Retry},
		{transient, 5, false, DeadLetter}, // the last allowed delivery
		{transient, 9, false, DeadLetter},
		{poison, 1, false, DeadLetter}, // at once
		{context.Canceled, 1, true, GiveBack},
		{context.Canceled, 1, false, Retry}, // canceled, but not by our shutdown
	} {
		if got := Decide(c.err, c.delivered, 5, c.stopping); got != c.want {
			t.Errorf("Decide(%v, %d, 5, stopping %v) = %v, want %v", c.err, c.delivered, c.stopping, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := Backoff(uint64(i + 1)); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// fakeMsg records what was done with it.
type fakeMsg struct {
	jetstream.Msg
	data      string
	delivered uint64
	mu        sync.Mutex
	acts      []string
}

func (m *fakeMsg) act(a string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acts = append(m.acts, a)
	return nil
}
func (m *fakeMsg) Acts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.acts...)
}
func (m *fakeMsg) Data() []byte         { return []byte(m.data) }
func (m *fakeMsg) Subject() string      { return "tasks.welcome" }
func (m *fakeMsg) Headers() nats.Header { return nats.Header{} }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered}, nil
}
func (m *fakeMsg) DoubleAck(context.Context) error    { return m.act("ack") }
func (m *fakeMsg) Nak() error                         { return m.act("nak") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error { return m.act("nak " + d.String()) }
func (m *fakeMsg) TermWithReason(reason string) error { return m.act("term " + reason) }
func (m *fakeMsg) Term() error                        { return m.act("term") }
func (m *fakeMsg) InProgress() error                  { return m.act("in progress") }
func (m *fakeMsg) Ack() error                         { return m.act("plain ack") }
func (m *fakeMsg) Reply() string                      { return "" }

func newMsg(data string, delivered uint64) *fakeMsg {
	return &fakeMsg{data: data, delivered: delivered}
}

type fakeBatch struct{ ch chan jetstream.Msg }

func (b *fakeBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b *fakeBatch) Error() error                   { return nil }

// fakeConsumer hands out queued messages, up to the batch asked for,
// waiting at most 20 ms for the first.
type fakeConsumer struct {
	jetstream.Consumer
	q    chan *fakeMsg
	n    atomic.Int64
	max  atomic.Int64
	down atomic.Bool // NATS away: every fetch fails
}

func newConsumer() *fakeConsumer { return &fakeConsumer{q: make(chan *fakeMsg, 100)} }

func (f *fakeConsumer) queue(ms ...*fakeMsg) {
	for _, m := range ms {
		f.q <- m
	}
}
func (f *fakeConsumer) fetches() int64  { return f.n.Load() }
func (f *fakeConsumer) maxBatch() int64 { return f.max.Load() }

func (f *fakeConsumer) Fetch(batch int, _ ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	f.n.Add(1)
	if f.down.Load() {
		time.Sleep(20 * time.Millisecond)
		return nil, nats.ErrConnectionClosed
	}
	if int64(batch) > f.max.Load() {
		f.max.Store(int64(batch))
	}
	ch := make(chan jetstream.Msg, batch)
	timeout := time.After(20 * time.Millisecond)
fill:
	for len(ch) < batch {
		select {
		case m := <-f.q:
			ch <- m
		case <-timeout:
			break fill
		}
		if len(f.q) == 0 {
			break
		}
	}
	close(ch)
	return &fakeBatch{ch: ch}, nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runUntilDecided runs c over msgs until each has been acted on, then
// stops it.
func runUntilDecided(t *testing.T, c *Consumer, fc *fakeConsumer, msgs []*fakeMsg) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	fc.queue(msgs...)
	waitFor(t, "every task acted on", func() bool {
		for _, m := range msgs {
			if len(m.Acts()) == 0 {
				return false
			}
		}
		return true
	})
}

// TestRunActsOnEachDecision: done, failed, failed for the last time,
// poison, and a dead letter that cannot be kept.
func TestRunActsOnEachDecision(t *testing.T) {
	fc := newConsumer()
	var dead []string
	var mu sync.Mutex
	c := New(fc, func(_ context.Context, m jetstream.Msg) error {
		switch string(m.Data()) {
		case "ok":
			return nil
		case "poison", "poison, dead letters down":
			return fmt.Errorf("%w: no user_id", ErrPoison)
		default:
			return errors.New("db down")
		}
	}, Options{MaxDeliver: 5, DeadLetter: func(_ context.Context, m jetstream.Msg, reason string, delivered uint64) error {
		if string(m.Data()) == "poison, dead letters down" {
			return errors.New("nats down")
		}
		mu.Lock()
		dead = append(dead, fmt.Sprintf("%s: %s (delivery %d)", m.Data(), reason, delivered))
		mu.Unlock()
		return nil
	}})
	msgs := []*fakeMsg{newMsg("ok", 1), newMsg("fails", 2), newMsg("fails for good", 5), newMsg("poison", 1), newMsg("poison, dead letters down", 1)}
	want := []string{"ack", "nak 2s", "term db down", "term poison task: no user_id", "nak 1s"}
	runUntilDecided(t, c, fc, msgs)
	for i, m := range msgs {
		if a := m.Acts(); len(a) != 1 || a[0] != want[i] {
			t.Errorf("%s: %v, want [%s]", m.data, a, want[i])
		}
	}
	if len(dead) != 2 || dead[0] != "fails for good: db down (delivery 5)" && dead[1] != "fails for good: db down (delivery 5)" {
		t.Errorf("dead letters %q", dead)
	}
}

// TestConcurrencyIsBounded: never more tasks at once than Concurrency, and
// a fetch never asks for more than the free slots.
func TestConcurrencyIsBounded(t *testing.T) {
	fc := newConsumer()
	var now, peak atomic.Int64
	c := New(fc, func(context.Context, jetstream.Msg) error {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(10 * time.Millisecond)
		now.Add(-1)
		return nil
	}, Options{Concurrency: 3})
	var msgs []*fakeMsg
	for i := range 30 {
		msgs = append(msgs, newMsg(fmt.Sprint(i), 1))
	}
	runUntilDecided(t, c, fc, msgs)
	if peak.Load() > 3 || peak.Load() < 2 || fc.maxBatch() > 3 {
		t.Errorf("peak %d tasks at once, largest fetch %d; want at most 3 (and more than 1)", peak.Load(), fc.maxBatch())
	}
}

// TestLiveMeansProgress: idle is live (fetches come back empty); every
// slot held by a stuck task, with more waiting, is not; it is live again
// once they finish.
func TestLiveMeansProgress(t *testing.T) {
	fc := newConsumer()
	release := make(chan struct{})
	c := New(fc, func(ctx context.Context, m jetstream.Msg) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}, Options{Concurrency: 2, StuckAfter: 200 * time.Millisecond, ShutdownTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(400 * time.Millisecond)
	if err := c.Live(); err != nil {
		t.Fatalf("idle: %v", err)
	}
	fc.down.Store(true) // NATS away: fetches fail, and the loop still turns
	time.Sleep(1500 * time.Millisecond)
	if err := c.Live(); err != nil {
		t.Fatalf("NATS away: %v; a restart would not bring it back", err)
	}
	fc.down.Store(false)
	msgs := []*fakeMsg{newMsg("a", 1), newMsg("b", 1), newMsg("c", 1)}
	fc.queue(msgs...)
	waitFor(t, "not live with its tasks stuck", func() bool { return c.Live() != nil })
	if c.InFlight() != 2 {
		t.Errorf("%d in flight, want 2", c.InFlight())
	}
	close(release)
	waitFor(t, "live again", func() bool { return c.Live() == nil })
}

// TestShutdown: the tasks in flight finish within the bound and are
// acknowledged; one that does not is given back; no fetch after the stop.
func TestShutdown(t *testing.T) {
	fc := newConsumer()
	c := New(fc, func(ctx context.Context, m jetstream.Msg) error {
		if string(m.Data()) == "quick" {
			time.Sleep(50 * time.Millisecond)
			return nil
		}
		<-ctx.Done() // never finishes by itself
		return ctx.Err()
	}, Options{Concurrency: 2, ShutdownTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	quick, stuck := newMsg("quick", 1), newMsg("stuck", 1)
	fc.queue(quick, stuck)
	waitFor(t, "both in flight", func() bool { return c.InFlight() == 2 })
	cancel()
	start := time.Now()
	<-done
	if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("Run returned %v after the stop; want about the 300 ms bound", took)
	}
	fetches := fc.fetches()
	time.Sleep(100 * time.Millisecond)
	if a, b := quick.Acts(), stuck.Acts(); len(a) != 1 || a[0] != "ack" || len(b) != 1 || b[0] != "nak" || fc.fetches() != fetches {
		t.Errorf("quick %v, stuck %v, fetches after the stop %d; want ack, nak (given back), none", a, b, fc.fetches()-fetches)
	}
}
