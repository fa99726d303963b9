// The HTTP side of tracing: a server span per request named by chi's route
// ("GET /users/{id}", set once the router matched, since otelhttp alone only
// sees the raw path), the request ID on the span and in the outgoing
// baggage, the W3C traceresponse header back to the caller, and a client
// span per outgoing call. TraceResponse builds its header in a fixed array,
// one allocation per request; the plain version is
// fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags()).

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

	"github.com/failready/failready/internal/httplabel"
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
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return httplabel.Method(r) }),
	)
}

// Middleware runs inside the router, after the request-ID middleware. It
// returns the W3C traceresponse header (so a user can jump straight to the
// trace), and once the route has matched, names the span "METHOD /route" with
// http.route and the request ID: otelhttp alone cannot see chi's route, and
// naming spans by raw path would make every id a new name.
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
			next.ServeHTTP(w, r)
			route := httplabel.Route(r)
			span.SetName(httplabel.Method(r) + " " + route)
			// One call with both: each SetAttributes may grow the span's slice.
			if id := requestid.FromContext(r.Context()); id != "" {
				span.SetAttributes(semconv.HTTPRoute(route), attribute.String(RequestIDKey, id))
			} else {
				span.SetAttributes(semconv.HTTPRoute(route))
			}
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
// context and baggage injected into the request, the request ID among the
// baggage (so that the next hop's spans, and any hop after it, can carry it
// without knowing X-Request-ID). Create it once.
func (t Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	return requestIDBaggage{otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(t.Propagator),
	)}
}

// requestIDBaggage adds the request ID of the request's context to its
// baggage, before next injects the baggage. Done per outgoing call rather
// than per inbound request: only calls carry baggage anywhere.
type requestIDBaggage struct{ next http.RoundTripper }

func (t requestIDBaggage) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if id := requestid.FromContext(ctx); id != "" {
		if m, err := baggage.NewMemberRaw(RequestIDKey, id); err == nil {
			if b, err := baggage.FromContext(ctx).SetMember(m); err == nil {
				r = r.WithContext(baggage.ContextWithBaggage(ctx, b)) // a copy: a RoundTripper must not modify its request
			}
		}
	}
	return t.next.RoundTrip(r)
}

// Fail records err on span and marks it failed.
func Fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
