// Package otlptest holds OTLP receivers for tests, real servers on loopback
// that keep what they are sent, flattened: Receiver takes traces over gRPC
// (a stand-in where a program of the stack cannot be: the collector coming
// back after an outage), Sink takes them and decodes nothing (the load
// benchmark's cost-free end). Logs have their receiver in the dev stack
// (devstack/lokidoor/lokitest), where Loki's door is.
//
// Depends on: go.opentelemetry.io/proto/otlp, google.golang.org/grpc; for
// tests (it imports testing).
//
// Tests use: go.opentelemetry.io/otel.
package otlptest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the collector's exporter compresses by default
)

// Span is one received span.
type Span struct {
	Service      string // the resource's service.name
	Resource     map[string]string
	TraceID      string
	SpanID       string
	ParentSpanID string
	Name         string
	Kind         string // SPAN_KIND_SERVER, ...
	Attrs        map[string]string
	StatusError  bool
	Events       []string
}

// Receiver serves OTLP gRPC traces.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	srv   *grpc.Server
	ln    net.Listener
	mu    sync.Mutex
	spans []Span
}

// Listen starts a receiver on a free loopback port, stopped when the test ends.
func Listen(t testing.TB) *Receiver {
	t.Helper()
	return ListenAt(t, "127.0.0.1:0")
}

// ListenAt starts a receiver on addr (to bring a collector back where an
// exporter already points), stopped when the test ends.
func ListenAt(t testing.TB, addr string) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{srv: grpc.NewServer(), ln: ln}
	coltracepb.RegisterTraceServiceServer(r.srv, r)
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(r.srv.Stop)
	return r
}

// Addr is the receiver's host:port.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// Export implements the OTLP trace service.
func (r *Receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					Service:      res["service.name"],
					Resource:     res,
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Name:         s.GetName(),
					Kind:         s.GetKind().String(),
					Attrs:        attrs(s.GetAttributes()),
					StatusError:  s.GetStatus().GetCode() == 2, // STATUS_CODE_ERROR
				}
				for _, e := range s.GetEvents() {
					sp.Events = append(sp.Events, e.GetName())
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = fmt.Sprint(v.GetValue())
		}
	}
	return m
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Trace returns the received spans of one trace.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// WaitTrace waits until the trace has at least n spans, and returns them.
func (r *Receiver) WaitTrace(t testing.TB, traceID string, n int, timeout time.Duration) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.Trace(traceID)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans within %s, want %d: %+v", traceID, len(got), timeout, n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
