package otlptest

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// TestLogsReceiver: what the collector's otlphttp exporter sends (gzipped
// protobuf at /otlp/v1/logs) is kept record by record, with resource,
// severity, body, attributes and trace context; what Loki would refuse is
// refused the same way.
func TestLogsReceiver(t *testing.T) {
	r := ListenLogs(t)
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
		hr, _ := http.NewRequest("POST", "http://"+r.Addr()+path, bytes.NewReader(body))
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
	if code := post(LokiPath, "application/x-protobuf", "gzip", gz.Bytes()); code != 204 {
		t.Fatalf("gzipped push: %d", code)
	}
	if code := post(LokiPath, "application/x-protobuf", "", b); code != 204 {
		t.Fatalf("plain push: %d", code)
	}
	for _, c := range []struct {
		path, ctype string
		body        []byte
		want        int
	}{
		{LokiPath, "application/x-protobuf", []byte("not protobuf \xff\xff"), 400},
		{LokiPath, "text/plain", b, 415},
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
