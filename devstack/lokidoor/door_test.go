package lokidoor

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// TestPush: what the collector's otlphttp exporter sends (gzipped
// protobuf at /otlp/v1/logs) is kept record by record, with resource,
// severity, body, attributes and trace context; what Loki would refuse is
// refused the same way.
func TestPush(t *testing.T) {
	r := New(nil, 0)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "service1")}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
			TimeUnixNano:   1_700_000_000_000_000_001,
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN, SeverityText: "WARN",
			Body:       &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "rejected inbound request id"}},
			Attributes: []*commonpb.KeyValue{str("request_id", "abc")},
			TraceId:    bytes.Repeat([]byte{0xab}, 16), SpanId: bytes.Repeat([]byte{0xcd}, 8),
		}}}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(b)
	_ = zw.Close()
	post := func(path, ctype, enc string, body []byte) int {
		t.Helper()
		hr, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		hr.Header.Set("Content-Type", ctype)
		if enc != "" {
			hr.Header.Set("Content-Encoding", enc)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(PushPath, "application/x-protobuf", "gzip", gz.Bytes()); code != 204 {
		t.Fatalf("gzipped push: %d", code)
	}
	if code := post(PushPath, "application/x-protobuf", "", b); code != 204 {
		t.Fatalf("plain push: %d", code)
	}
	for _, c := range []struct {
		path, ctype string
		body        []byte
		want        int
	}{
		{PushPath, "application/x-protobuf", []byte("not protobuf \xff\xff"), 400},
		{PushPath, "text/plain", b, 415},
		{"/loki/api/v1/push", "application/x-protobuf", b, 404},
	} {
		if code := post(c.path, c.ctype, "", c.body); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.path, c.ctype, code, c.want)
		}
	}
	got := r.Records()
	if len(got) != 2 {
		t.Fatalf("%d records, want 2", len(got))
	}
	g := got[0]
	if g.Resource["service.name"] != "service1" || g.SeverityText != "WARN" || g.SeverityNumber != 13 ||
		g.Body != "rejected inbound request id" || g.Attrs["request_id"] != "abc" ||
		g.TraceID != "abababababababababababababababab" || g.SpanID != "cdcdcdcdcdcdcdcd" || g.Time.UnixNano() != 1_700_000_000_000_000_001 {
		t.Errorf("record %+v", g)
	}
}

// TestQuery: the door answers log queries on what it keeps as Loki would:
// the selector on the index labels, filters on labels and structured
// metadata (numbers compared as numbers), newest first, one stream per
// distinct label set; what it cannot answer is a 400 that says why.
func TestQuery(t *testing.T) {
	d := New([]string{"service.name", "deployment.environment.name"}, 3)
	now := time.Now()
	rec := func(svc, level, id, status string, ago time.Duration) Record {
		return Record{Resource: map[string]string{"service.name": svc, "deployment.environment.name": "native"},
			Time: now.Add(-ago), SeverityText: level, Body: "http request",
			Attrs: map[string]string{"request_id": id, "status": status, "route": "/users/{id}"}, TraceID: "ab"}
	}
	d.records = []Record{
		rec("service1", "INFO", "old", "200", 2*time.Hour),
		rec("service1", "WARN", "r1", "404", 3*time.Second),
		rec("service2", "WARN", "r1", "404", 2*time.Second),
		rec("service1", "ERROR", "r2", "500", time.Second),
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	get := func(q string, extra ...string) (int, []map[string]string, []string) {
		t.Helper()
		v := url.Values{"query": {q}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		resp, err := http.Get(srv.URL + "/loki/api/v1/query_range?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Result []struct {
					Stream map[string]string `json:"stream"`
					Values [][2]string       `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		var streams []map[string]string
		var order []string
		for _, r := range out.Data.Result {
			streams = append(streams, r.Stream)
			for range r.Values {
				order = append(order, r.Stream["service_name"]+"/"+r.Stream["request_id"])
			}
		}
		return resp.StatusCode, streams, order
	}
	for q, want := range map[string]string{
		`{service_name=~".+"} | request_id="r1"`: "service2/r1 service1/r1",
		`{service_name="service1"}`:              "service1/r2 service1/r1",
		`{service_name=~"service.*", deployment_environment_name="native"} | status >= 500`:           "service1/r2",
		`{service_name!="service2", service_name=~".+"} | severity_text=~"WARN|ERROR", status != 500`: "service1/r1",
		"{service_name=`service1`} |= \"request\" != \"nope\" | trace_id=\"ab\"":                      "service1/r2 service1/r1",
		`{service_name="service1"} | request_id="none"`:                                               "",
		`{service_name="service1"} | status > 400 and status < 500`:                                   "service1/r1",
	} {
		code, _, order := get(q)
		if code != 200 || strings.Join(order, " ") != want {
			t.Errorf("%s: %d %q, want %q", q, code, strings.Join(order, " "), want)
		}
	}
	if _, streams, order := get(`{service_name=~".+"}`, "direction", "forward", "limit", "2"); strings.Join(order, " ") != "service1/r1 service2/r1" ||
		streams[0]["severity_text"] != "WARN" || streams[0]["route"] != "/users/{id}" {
		t.Errorf("forward, limit 2: %v %v", order, streams)
	}
	if _, _, order := get(`{service_name="service1"}`, "since", "3h"); len(order) != 3 {
		t.Errorf("since 3h: %v", order)
	}
	for _, bad := range []string{
		`sum(count_over_time({service_name="service1"}[1m]))`,
		`{service_name=~".*"}`,
		`{service_name="service1"} | json`,
		`{service_name="service1"} | status >= "500"`,
		`{service_name="service1"`,
		`{service_name="service1"} | route=~"("`,
	} {
		if code, _, _ := get(bad); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	// The bound: the last 3 records are kept, the oldest dropped, once the
	// store is a quarter over it.
	for range 2 {
		d.mu.Lock()
		d.records = append(d.records, rec("service1", "INFO", "new", "200", 0))
		d.mu.Unlock()
	}
	body := postRecords(t, srv.URL)
	if body != 204 || len(d.Records()) != 3 {
		t.Errorf("push %d; %d records kept, want 3", body, len(d.Records()))
	}
}

func postRecords(t *testing.T, base string) int {
	t.Helper()
	b, _ := proto.Marshal(&collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}}}}},
	}}})
	resp, err := http.Post(base+PushPath, "application/x-protobuf", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
