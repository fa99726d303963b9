package otlptest

import (
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
)

// Sink is an OTLP gRPC endpoint that accepts every export and decodes
// nothing: an exporter pays its whole cost (marshalling, compression, the
// RPC) while the receiving side costs next to nothing. The load benchmark
// uses it to tell what tracing costs the services from what a collector on
// the same cores costs them.
type Sink struct {
	ln      net.Listener
	exports atomic.Int64
	bytes   atomic.Int64
}

// rawCodec hands the message bytes over as they are, both ways.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

// ListenSink starts a sink on a free loopback port, stopped when the test
// ends.
func ListenSink(t testing.TB) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{ln: ln}
	// Every method is unknown to a server with no services registered: the
	// handler answers each one (the trace Export among them) with an empty
	// message, which is a valid empty ExportTraceServiceResponse.
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		s.exports.Add(1)
		s.bytes.Add(int64(len(in)))
		out := []byte{}
		return stream.SendMsg(&out)
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

// Addr is the sink's host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Exports is how many export calls the sink has answered, and how many
// bytes they carried.
func (s *Sink) Exports() (calls, bytes int64) { return s.exports.Load(), s.bytes.Load() }
