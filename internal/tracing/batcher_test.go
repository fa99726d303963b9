package tracing_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/failready/failready/internal/tracing"
)

// endSpans ends n spans through a provider that uses p.
func endSpans(tp *sdktrace.TracerProvider, n int) {
	for range n {
		_, span := tp.Tracer("test").Start(context.Background(), "work")
		span.End()
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatcherExportsAFullBatchAtOnce(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	b := tracing.NewBatcher(exp, tracing.BatchOptions{BatchSize: 10, Delay: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	defer tp.Shutdown(context.Background())

	endSpans(tp, 9)
	time.Sleep(50 * time.Millisecond)
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans exported before the batch was full or the delay passed", n)
	}
	endSpans(tp, 1)
	waitFor(t, "a full batch exported", func() bool { return len(exp.GetSpans()) == 10 })
}

func TestBatcherExportsAfterTheDelay(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	b := tracing.NewBatcher(exp, tracing.BatchOptions{BatchSize: 100, Delay: 20 * time.Millisecond})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	defer tp.Shutdown(context.Background())
	endSpans(tp, 3)
	waitFor(t, "3 spans exported after the delay", func() bool { return len(exp.GetSpans()) == 3 })
}

func TestBatcherSkipsUnsampledSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	b := tracing.NewBatcher(exp, tracing.BatchOptions{})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b), sdktrace.WithSampler(sdktrace.NeverSample()))
	endSpans(tp, 5)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d unsampled spans exported", n)
	}
	_ = tp.Shutdown(context.Background())
}

// blockingExporter holds every export until released.
type blockingExporter struct {
	release  chan struct{}
	mu       sync.Mutex
	exported int
	shutdown bool
}

func (e *blockingExporter) ExportSpans(ctx context.Context, s []sdktrace.ReadOnlySpan) error {
	select {
	case <-e.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exported += len(s)
	return nil
}

func (e *blockingExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown = true
	return nil
}

// errorsSeen collects what OTel reports to its error handler during a test.
func errorsSeen(t *testing.T) func() string {
	var mu sync.Mutex
	var seen []string
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, err.Error())
	}))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(seen, "\n")
	}
}

// TestBatcherNeverBlocksAndBoundsItsQueue: with the exporter stuck, ending
// spans costs no wait; the queue holds QueueSize and drops the rest, and
// says how many it dropped.
func TestBatcherNeverBlocksAndBoundsItsQueue(t *testing.T) {
	seen := errorsSeen(t)
	exp := &blockingExporter{release: make(chan struct{})}
	b := tracing.NewBatcher(exp, tracing.BatchOptions{BatchSize: 10, QueueSize: 50, Delay: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))

	endSpans(tp, 10) // a full batch: the goroutine takes it and blocks in the export
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	endSpans(tp, 1000)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("1000 spans took %s with the exporter stuck", el)
	}
	close(exp.release)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if exp.exported != 10+50 {
		t.Errorf("exported %d spans, want the blocked batch (10) and a full queue (50)", exp.exported)
	}
	if !exp.shutdown {
		t.Error("the exporter was not shut down")
	}
	if !strings.Contains(seen(), "950 spans dropped") {
		t.Errorf("the drops were not reported: %q", seen())
	}
}

func TestBatcherFlushAndShutdown(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	close(exp.release) // never blocks
	exported := func() int {
		exp.mu.Lock()
		defer exp.mu.Unlock()
		return exp.exported
	}
	b := tracing.NewBatcher(exp, tracing.BatchOptions{BatchSize: 100, Delay: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	endSpans(tp, 7)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := exported(); n != 7 {
		t.Fatalf("ForceFlush exported %d of 7", n)
	}
	endSpans(tp, 5)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := exported(); n != 12 || !exp.shutdown {
		t.Fatalf("Shutdown: %d of 12 exported, exporter shut down: %v", n, exp.shutdown)
	}
	endSpans(tp, 3) // dropped: shut down
	if err := b.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush after Shutdown: %v", err)
	}
	if n := exported(); n != 12 {
		t.Errorf("%d spans exported after Shutdown", n-12)
	}
}

// TestBatcherShutdownIsBounded: an export that never ends does not hold
// Shutdown past its context, and the exporter is still shut down once the
// export gives up.
func TestBatcherShutdownIsBounded(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	b := tracing.NewBatcher(exp, tracing.BatchOptions{BatchSize: 1, Delay: time.Hour, ExportTimeout: 300 * time.Millisecond})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	endSpans(tp, 1)
	time.Sleep(20 * time.Millisecond) // the export has started and hangs
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Shutdown took %s", el)
	}
	waitFor(t, "the exporter shut down after the export timed out", func() bool {
		exp.mu.Lock()
		defer exp.mu.Unlock()
		return exp.shutdown
	})
}
