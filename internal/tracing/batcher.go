package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Batcher is a span processor that exports ended spans in batches, like the
// SDK's BatchSpanProcessor, and like it never blocks the code that ends a
// span: when the queue is full, the span is dropped (and counted).
//
// Unlike it, it wakes its goroutine once per batch, not once per span. The
// SDK's processor hands every span to its goroutine over a channel, so a
// service ending three spans per request wakes that goroutine three times
// per request: a futex call and a context switch each, paid beside the
// requests on the same cores (make bench-load: BENCHMARKS.md). Here ending a
// span appends it to a slice under a mutex; the goroutine is woken when a
// batch is full, every BatchOptions.Delay (so that no span waits much
// longer), and on ForceFlush and Shutdown. Each time it takes every queued
// span and exports them a batch at a time.
//
// Memory is bounded: at most QueueSize spans wait, and at most QueueSize
// more are being exported.
type Batcher struct {
	exp sdktrace.SpanExporter
	o   BatchOptions

	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	dropped int
	stopped bool

	ready chan struct{}      // a full batch waits (capacity 1)
	flush chan chan struct{} // ForceFlush
	stop  chan struct{}
	done  chan struct{} // the goroutine has returned
}

// BatchOptions bound a Batcher; zero values take the SDK's defaults.
type BatchOptions struct {
	BatchSize     int           // spans per export (512)
	QueueSize     int           // spans waiting at most (2048)
	Delay         time.Duration // the longest a span waits for its batch (5 s)
	ExportTimeout time.Duration // per export (30 s)
}

// NewBatcher starts a Batcher exporting to exp.
func NewBatcher(exp sdktrace.SpanExporter, o BatchOptions) *Batcher {
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 2048
	}
	o.BatchSize = min(o.BatchSize, o.QueueSize)
	if o.Delay <= 0 {
		o.Delay = 5 * time.Second
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = 30 * time.Second
	}
	b := &Batcher{
		exp: exp, o: o,
		ready: make(chan struct{}, 1), flush: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go b.run()
	return b
}

// OnStart does nothing: spans are batched when they end.
func (b *Batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span, or drops it when the queue is full or the
// Batcher is shut down. It never blocks on the exporter.
func (b *Batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	if b.stopped || len(b.spans) >= b.o.QueueSize {
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.spans = append(b.spans, s)
	full := len(b.spans) == b.o.BatchSize // once per batch, not on every span after it
	b.mu.Unlock()
	if full {
		select {
		case b.ready <- struct{}{}:
		default: // already signalled
		}
	}
}

func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.o.Delay)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		case <-b.ready:
		case ack := <-b.flush:
			b.exportAll(context.Background())
			close(ack)
			continue
		}
		b.exportAll(context.Background())
	}
}

// exportAll exports everything queued, a batch at a time, and reports the
// spans dropped since the last time through OTel's error handler.
func (b *Batcher) exportAll(ctx context.Context) error {
	b.mu.Lock()
	spans, dropped := b.spans, b.dropped
	b.spans, b.dropped = nil, 0
	b.mu.Unlock()
	if dropped > 0 {
		otel.Handle(fmt.Errorf("tracing: %d spans dropped: the export queue was full", dropped))
	}
	var first error
	for len(spans) > 0 {
		n := min(len(spans), b.o.BatchSize)
		ectx, cancel := context.WithTimeout(ctx, b.o.ExportTimeout)
		err := b.exp.ExportSpans(ectx, spans[:n])
		cancel()
		if err != nil {
			otel.Handle(err)
			first = cmp.Or(first, err)
		}
		spans = spans[n:]
	}
	return first
}

// ForceFlush exports everything queued now, within ctx.
func (b *Batcher) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case b.flush <- ack:
	case <-b.done: // shut down: nothing left to flush
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops the goroutine, exports what is queued and shuts the
// exporter down, all within ctx. Spans that end afterwards are dropped.
func (b *Batcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return nil
	}
	b.stopped = true
	b.mu.Unlock()
	close(b.stop)
	// The goroutine may be in the middle of an export to a collector that
	// does not answer: whatever ctx allows, the rest finishes behind it, so
	// that the exporter is always shut down and its connection closed.
	finished := make(chan error, 1)
	go func() {
		<-b.done
		finished <- errors.Join(b.exportAll(ctx), b.exp.Shutdown(ctx))
	}()
	select {
	case err := <-finished:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
