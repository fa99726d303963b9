package exemplars_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/internal/exemplars"
)

// A duration recorded inside a sampled span leaves that span's trace as its
// bucket's exemplar. Services call Setup, which exports over OTLP; here a
// reader of the example's own reads the histogram.
func ExampleLatency() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(exemplars.ProviderOptions(), sdkmetric.WithReader(reader))...)
	defer mp.Shutdown(context.Background())

	took, _ := exemplars.NewLatency(mp, "messaging.process.duration", "Time to handle one task.")
	attrs := exemplars.NewAttrs(100, func(task string) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("messaging.destination.name", task)}
	})
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	}))
	took.Record(ctx, 700*time.Millisecond, attrs.Get("tasks.welcome"))

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	dp := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints[0]
	e := dp.Exemplars[0]
	fmt.Printf("%d in (0.5, 1] s; exemplar %v s, trace %x\n", dp.BucketCounts[10], e.Value, e.TraceID)
	// Output:
	// 1 in (0.5, 1] s; exemplar 0.7 s, trace 4bf92f3577b34da6a3ce929d0e0e4736
}
