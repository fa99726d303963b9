package tracing

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/internal/httproute"
	"github.com/failready/failready/internal/requestid"
)

// RequestIDKey is the span attribute and baggage member of the request ID.
// It stays distinct from the trace ID: a client may send its own request ID,
// and a trace may be sampled out while the ID is always logged.
const RequestIDKey = "request_id"

// Handler wraps the whole router (outermost) with otelhttp: a server span
// per request, its context extracted from traceparent and baggage. Requests
// to the skip paths (health probes) are not traced. The span starts with the
// method as its name; Middleware renames it once the router has matched.
func (t Tracing) Handler(h http.Handler, skip ...string) http.Handler {
	skipSet := make(map[string]bool, len(skip))
	for _, p := range skip {
		skipSet[p] = true
	}
	return otelhttp.NewHandler(h, "http.server",
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return !skipSet[r.URL.Path] }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return httproute.Method(r) }),
	)
}

// Middleware runs inside the router, after the request-ID middleware. It
// returns the W3C traceresponse header (so a user can jump straight to the
// trace), puts the request ID on the span and in the baggage (so that it
// reaches the next hop's spans too), and once the route has matched, names
// the span "METHOD /route" with http.route: otelhttp alone cannot see chi's
// route, and naming spans by raw path would make every id a new name.
func Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			span := trace.SpanFromContext(r.Context())
			sc := span.SpanContext()
			if !sc.IsValid() {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Traceresponse", TraceResponse(sc))
			ctx := r.Context()
			if id := requestid.FromContext(ctx); id != "" {
				span.SetAttributes(attribute.String(RequestIDKey, id))
				if m, err := baggage.NewMemberRaw(RequestIDKey, id); err == nil {
					if b, err := baggage.FromContext(ctx).SetMember(m); err == nil {
						ctx = baggage.ContextWithBaggage(ctx, b)
					}
				}
			}
			r = r.WithContext(ctx)
			next.ServeHTTP(w, r)
			route := httproute.Pattern(r)
			span.SetName(httproute.Method(r) + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		})
	}
}

// TraceResponse formats the W3C Trace Context level 2 traceresponse value,
// "00-<trace id>-<span id>-<flags>", with one allocation (it runs on every
// request).
func TraceResponse(sc trace.SpanContext) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// RecordPanic marks the request's span as failed by a panic; a hook for the
// recoverer.
func RecordPanic(r *http.Request, rec any) {
	span := trace.SpanFromContext(r.Context())
	span.RecordError(fmt.Errorf("panic: %v", rec), trace.WithStackTrace(true))
	span.SetStatus(codes.Error, "panic")
}

// Transport wraps base with otelhttp: a client span per call, and the trace
// context and baggage injected into the request. Create it once.
func (t Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(t.Propagator),
	)
}

// Fail records err on span and marks it failed.
func Fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
