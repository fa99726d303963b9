// Package lokidoor stands at Loki's door where Loki cannot run (Loki is
// AGPL and never built or run here): it takes OTLP logs over HTTP at
// /otlp/v1/logs as Loki does, keeps each record the way Loki's OTLP
// ingestion maps it with the project's deploy/loki/config.yaml (two index
// labels, the rest structured metadata), and answers the part of Loki's
// query API that the walkthroughs use: log queries (a stream selector,
// label filters, line filters) on /loki/api/v1/query_range and /query,
// /loki/api/v1/labels, and /ready. Metric queries (count_over_time and the
// like) are refused with a clear error: Grafana's Logs dashboard needs the
// real Loki.
//
// Not a pattern: a development tool behind make local (on Loki's port,
// 3100) and the e2e tests.
//
// Depends on: go.opentelemetry.io/proto/otlp, google.golang.org/protobuf,
// gopkg.in/yaml.v3.
package lokidoor

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// PushPath is where Loki takes OTLP logs over HTTP (the collector's
// otlphttp exporter with endpoint http://loki:3100/otlp appends /v1/logs).
const PushPath = "/otlp/v1/logs"

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

// Door keeps what it is sent, up to a bound, and answers queries on it.
type Door struct {
	indexed []string
	max     int

	mu      sync.Mutex
	records []Record
	pushes  int
}

// New returns a door that maps records with the index labels given (read
// them from Loki's config with IndexLabels) and keeps the last max records
// (0: all of them).
func New(indexed []string, max int) *Door { return &Door{indexed: indexed, max: max} }

// Handler serves Loki's push and query endpoints.
func (d *Door) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PushPath, d.push)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	mux.HandleFunc("/loki/api/v1/query_range", d.query)
	mux.HandleFunc("/loki/api/v1/query", d.query)
	mux.HandleFunc("GET /loki/api/v1/labels", d.labels)
	return mux
}

// Records returns the records received so far (the last max).
func (d *Door) Records() []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.records)
}

// Pushes is how many pushes were taken.
func (d *Door) Pushes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pushes
}

// ReadOTLP reads an OTLP/HTTP export's body into msg: protobuf, gzip or
// not, 64 MiB at most. On a body it cannot take it answers (415 for
// another content type, 400 for one it cannot decode) and returns false.
func ReadOTLP(w http.ResponseWriter, req *http.Request, msg proto.Message) bool {
	if req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
		return false
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, 64<<20)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err == nil {
		err = proto.Unmarshal(b, msg)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// push takes an OTLP export as Loki does: protobuf, gzip or not; 204 on
// success, 400 on a body it cannot decode, 415 on another content type.
func (d *Door) push(w http.ResponseWriter, req *http.Request) {
	var msg collogspb.ExportLogsServiceRequest
	if !ReadOTLP(w, req, &msg) {
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
					Body:    asString(l.GetBody()),
					Attrs:   attrs(l.GetAttributes()),
					TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()),
				})
			}
		}
	}
	d.mu.Lock()
	d.pushes++
	d.records = append(d.records, got...)
	if d.max > 0 && len(d.records) > d.max+d.max/4 { // trim now and then, not on every push
		d.records = slices.Clone(d.records[len(d.records)-d.max:])
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = asString(kv.GetValue())
	}
	return m
}

// asString renders a value as the collector's pdata AsString does, and so
// as Loki stores a non-string attribute: 200 for a double 200.
func asString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'f', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case nil:
		return ""
	default:
		return fmt.Sprint(x) // arrays and maps: not in these services' lines
	}
}

// query answers a log query as Loki does without the categorize-labels
// encoding flag: one stream per distinct set of labels and structured
// metadata, its values ["<unix ns>", "<line>"], newest first unless
// direction=forward, at most limit lines (100 by default), between start
// and end (unix ns or RFC 3339; the last hour by default, or since=).
func (d *Door) query(w http.ResponseWriter, req *http.Request) {
	if err := req.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := ParseQuery(req.Form.Get("query"))
	if err != nil {
		http.Error(w, "parse error: "+err.Error(), http.StatusBadRequest)
		return
	}
	limit := 100
	if s := req.Form.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit <= 0 {
			http.Error(w, "invalid limit "+strconv.Quote(s), http.StatusBadRequest)
			return
		}
	}
	end := time.Now()
	if s := req.Form.Get("end"); s != "" {
		if end, err = parseTime(s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	start := end.Add(-time.Hour)
	if s := req.Form.Get("since"); s != "" {
		since, err := time.ParseDuration(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		start = end.Add(-since)
	}
	if s := req.Form.Get("start"); s != "" {
		if start, err = parseTime(s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	forward := req.Form.Get("direction") == "forward"

	var hits []Entry
	for _, r := range d.Records() {
		e := r.Loki(d.indexed)
		if e.Time.Before(start) || !e.Time.Before(end) || !q.Match(e) {
			continue
		}
		hits = append(hits, e)
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if forward {
			return hits[i].Time.Before(hits[j].Time)
		}
		return hits[j].Time.Before(hits[i].Time)
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	var result []*stream
	byKey := map[string]*stream{}
	for _, e := range hits {
		labels := make(map[string]string, len(e.Labels)+len(e.Metadata))
		for k, v := range e.Metadata {
			labels[k] = v
		}
		for k, v := range e.Labels {
			labels[k] = v
		}
		key, _ := json.Marshal(labels) // sorted keys: a stable key
		s := byKey[string(key)]
		if s == nil {
			s = &stream{Stream: labels}
			byKey[string(key)] = s
			result = append(result, s)
		}
		s.Values = append(s.Values, [2]string{strconv.FormatInt(e.Time.UnixNano(), 10), e.Line})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "streams", "result": result, "stats": map[string]any{}},
	})
}

// labels lists the index labels seen.
func (d *Door) labels(w http.ResponseWriter, _ *http.Request) {
	var names []string
	for _, r := range d.Records() {
		for k := range r.Loki(d.indexed).Labels {
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": names})
}

func parseTime(s string) (time.Time, error) {
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(0, ns), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: unix nanoseconds or RFC 3339", s)
	}
	return t, nil
}

// trimmed reports a query's text, cut for an error message.
func trimmed(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return strings.TrimSpace(s)
}

// Server is a door served over HTTP on a listener of its own.
type Server struct {
	*Door
	srv *http.Server
	ln  net.Listener
}

// Listen serves a new door (New's indexed and max) on addr ("host:0" picks
// a free port).
func Listen(addr string, indexed []string, max int) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Door: New(indexed, max), ln: ln}
	s.srv = &http.Server{Handler: s.Door.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is its base URL (Loki's /ready, /otlp and /loki/api/v1 under it).
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops serving (a Loki that goes down); the records stay readable.
func (s *Server) Close() error { return s.srv.Close() }
