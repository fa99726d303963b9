package tracing_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/failready/failready/internal/tracing"
)

// A server span per request, named by the route once the router has
// matched, and the traceresponse header that leads a user to the trace.
// (A service gets its Tracing from Setup, which exports to the collector;
// here the spans stay in memory.)
func ExampleMiddleware() {
	spans := tracetest.NewInMemoryExporter()
	tr := tracing.Tracing{Provider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)), Propagator: tracing.Propagator()}
	r := chi.NewRouter()
	r.Use(tracing.Middleware())
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {})
	rec := httptest.NewRecorder()
	tr.Handler(r, "/healthz").ServeHTTP(rec, httptest.NewRequest("GET", "/users/42", nil))
	s := spans.GetSpans()[0]
	fmt.Println(s.Name, len(rec.Header().Get("traceresponse")), s.SpanContext.TraceID().String() == rec.Header().Get("traceresponse")[3:35])
	// Output:
	// GET /users/{id} 55 true
}
