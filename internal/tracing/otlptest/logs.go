package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// LokiPath is where Loki takes OTLP logs over HTTP (the collector's
// otlphttp exporter with endpoint http://loki:3100/otlp appends /v1/logs).
const LokiPath = "/otlp/v1/logs"

// Record is one received log record, flattened.
type Record struct {
	Resource       map[string]string
	Time, Observed time.Time
	SeverityNumber int32
	SeverityText   string
	Body           string
	Attrs          map[string]string
	TraceID        string // hex, "" when none
	SpanID         string
}

// LogsReceiver stands at Loki's door: it takes OTLP logs over HTTP at
// LokiPath as Loki does (protobuf, gzip or not; 204 on success, 400 on a
// body it cannot decode, 415 on another content type) and keeps every
// record. Loki itself is AGPL and never runs here.
type LogsReceiver struct {
	srv     *http.Server
	ln      net.Listener
	mu      sync.Mutex
	records []Record
}

// ListenLogs starts a receiver on a free loopback port, stopped when the
// test ends.
func ListenLogs(t testing.TB) *LogsReceiver { t.Helper(); return ListenLogsAt(t, "127.0.0.1:0") }

// ListenLogsAt starts a receiver on addr (to bring it back where an exporter
// already points).
func ListenLogsAt(t testing.TB, addr string) *LogsReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &LogsReceiver{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+LokiPath, r.push)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// Addr is the receiver's host:port.
func (r *LogsReceiver) Addr() string { return r.ln.Addr().String() }

// Close stops the receiver (a Loki that goes down).
func (r *LogsReceiver) Close() error { return r.srv.Close() }

func (r *LogsReceiver) push(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, 64<<20)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	var msg collogspb.ExportLogsServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &msg)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Record
	for _, rl := range msg.GetResourceLogs() {
		res := attrs(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, l := range sl.GetLogRecords() {
				got = append(got, Record{
					Resource:       res,
					Time:           time.Unix(0, int64(l.GetTimeUnixNano())).UTC(),
					Observed:       time.Unix(0, int64(l.GetObservedTimeUnixNano())).UTC(),
					SeverityNumber: int32(l.GetSeverityNumber()), SeverityText: l.GetSeverityText(),
					Body:    l.GetBody().GetStringValue(),
					Attrs:   attrs(l.GetAttributes()),
					TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()),
				})
			}
		}
	}
	r.mu.Lock()
	r.records = append(r.records, got...)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Records returns the records received so far.
func (r *LogsReceiver) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}
