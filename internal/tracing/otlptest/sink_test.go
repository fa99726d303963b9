package otlptest_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/failready/failready/internal/tracing/otlptest"
)

// The real OTLP gRPC exporter sending to the sink: each export succeeds,
// and its bytes arrive.
func TestSinkAnswersExports(t *testing.T) {
	sink := otlptest.ListenSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(sink.Addr()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	for range 3 {
		_, span := tp.Tracer("t").Start(ctx, "span")
		span.End()
	}
	for _, s := range sr.Ended() {
		if err := exp.ExportSpans(ctx, []sdktrace.ReadOnlySpan{s}); err != nil {
			t.Fatalf("export: %v", err)
		}
	}
	if calls, bytes := sink.Exports(); calls != 3 || bytes < 3*20 {
		t.Fatalf("sink saw %d exports, %d bytes; want 3 exports of a span each", calls, bytes)
	}
}
