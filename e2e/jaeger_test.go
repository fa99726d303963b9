//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"testing"
	"time"

	"github.com/failready/failready/internal/tracing/otlptest"
)

// jaegerTraceJSON is a trace as Jaeger's query API (/api/traces/{id}, the
// API Grafana's Jaeger data source reads) returns it.
type jaegerTraceJSON struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []jaegerKV `json:"tags"`
			Logs []struct {
				Fields []jaegerKV `json:"fields"`
			} `json:"logs"`
			ProcessID string `json:"processID"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string     `json:"serviceName"`
			Tags        []jaegerKV `json:"tags"`
		} `json:"processes"`
	} `json:"data"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func kvMap(kvs []jaegerKV) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = fmt.Sprint(kv.Value)
	}
	return m
}

// jaegerKinds maps Jaeger's span.kind tag to OTLP's names.
var jaegerKinds = map[string]string{"server": "SPAN_KIND_SERVER", "client": "SPAN_KIND_CLIENT", "internal": "SPAN_KIND_INTERNAL",
	"producer": "SPAN_KIND_PRODUCER", "consumer": "SPAN_KIND_CONSUMER"}

// jaegerTrace asks Jaeger's query API at base for trace id and returns its
// spans in otlptest's shape (nil when Jaeger does not have it).
func jaegerTrace(t *testing.T, base, id string) []otlptest.Span {
	t.Helper()
	resp, err := http.Get(base + "/api/traces/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var tr jaegerTraceJSON
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s/api/traces/%s: %d %v", base, id, resp.StatusCode, err)
	}
	var spans []otlptest.Span
	for _, d := range tr.Data {
		for _, s := range d.Spans {
			tags := kvMap(s.Tags)
			p := d.Processes[s.ProcessID]
			sp := otlptest.Span{
				Service: p.ServiceName, Resource: kvMap(p.Tags), TraceID: d.TraceID, SpanID: s.SpanID,
				Name: s.OperationName, Kind: jaegerKinds[tags["span.kind"]], Attrs: tags,
				StatusError: tags["otel.status_code"] == "ERROR" || tags["error"] == "true",
			}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					sp.ParentSpanID = r.SpanID
				}
			}
			for _, l := range s.Logs {
				if ev := kvMap(l.Fields)["event"]; ev != "" {
					sp.Events = append(sp.Events, ev)
				}
			}
			spans = append(spans, sp)
		}
	}
	return spans
}

// waitJaegerTrace polls Jaeger until trace id has at least n spans.
func waitJaegerTrace(t *testing.T, base, id string, n int, timeout time.Duration) []otlptest.Span {
	t.Helper()
	var spans []otlptest.Span
	if _, ok := poll(timeout, 200*time.Millisecond, func() bool { spans = jaegerTrace(t, base, id); return len(spans) >= n }); !ok {
		t.Fatalf("Jaeger has %d spans of trace %s after %s, want %d: %+v", len(spans), id, timeout, n, spans)
	}
	return spans
}

// jaegerGet returns the body of a 200 answer of Jaeger's query API.
func jaegerGet(t *testing.T, url string) string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = u.Query().Encode()
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
