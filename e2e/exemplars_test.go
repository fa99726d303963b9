//go:build e2e

package e2e

import (
	"context"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/promapi"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// TestExemplars walks the path a reader of a latency panel takes, on the
// stack make local runs: service1's OpenTelemetry histogram reaches
// Prometheus through the collector (as otel_*, beside the DogStatsD series
// of the same latency), its slowest bucket's exemplar is one of the slow
// requests (service2 slowed by 300 ms through toxiproxy), and the trace it
// names is in Jaeger, its span the request's server span.
func TestExemplars(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "OTELCOL_BIN", "JAEGER_BIN"),
		Chaos:     devstack.ChaosOptions{Enabled: true},
	})
	prom, jaeger := st.Prometheus.URL(), st.Jaeger.URL()

	for range 20 {
		if r := call(t, "GET", st.Service1.URL()+"/users/1", "", nil); r.status != 200 {
			t.Fatalf("GET /users/1: %d", r.status)
		}
	}
	if _, err := st.Chaos.Service2.AddToxic("slow", "latency", "downstream", 1, toxiclient.Attributes{"latency": 300}); err != nil {
		t.Fatal(err)
	}
	slow := map[string]bool{}
	for range 3 {
		r := call(t, "GET", st.Service1.URL()+"/users/1", "", nil)
		if r.status != 200 {
			t.Fatalf("GET /users/1 with service2 slowed: %d", r.status)
		}
		slow[traceOf(t, r)] = true
	}
	resetChaos(t, st)

	// The slowest bucket of service1's histogram that holds an exemplar.
	const sel = `otel_http_server_request_duration_seconds_bucket{job="service1", http_route="/users/{id}"}`
	var le, value float64
	var trace, span string
	waited, ok := poll(60*time.Second, time.Second, func() bool {
		series, err := promapi.Exemplars(context.Background(), promClient, prom, sel, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		le = math.Inf(-1)
		for _, s := range series {
			b, err := strconv.ParseFloat(s.Labels["le"], 64)
			if err != nil || b <= le || len(s.Exemplars) == 0 {
				continue
			}
			e := slices.MaxFunc(s.Exemplars, func(a, b promapi.Exemplar) int { return int(math.Copysign(1, a.Value-b.Value)) })
			le, value, trace, span = b, e.Value, e.Labels["trace_id"], e.Labels["span_id"]
		}
		return slow[trace]
	})
	if !ok {
		t.Fatalf("after 60 s, the slowest bucket with an exemplar is le=%v: %v s, trace %q; want one of the slow requests %v", le, value, trace, slow)
	}
	t.Logf("exemplar after %s: bucket le=%v, %v s, trace %s span %s", waited, le, value, trace, span)
	if value < 0.3 || value > le || le > 1 {
		t.Errorf("exemplar %v s in bucket le=%v; the slow requests took 300 ms and more", value, le)
	}

	// One click on: the trace is in Jaeger, and the exemplar's span is the
	// request's server span.
	spans := waitJaegerTrace(t, jaeger, trace, 4, 30*time.Second)
	i := slices.IndexFunc(spans, func(s otlptest.Span) bool { return s.SpanID == span })
	if i < 0 || spans[i].Service != "service1" || spans[i].Name != "GET /users/{id}" || spans[i].Kind != "SPAN_KIND_SERVER" {
		t.Errorf("the exemplar's span %s in trace %s: %+v", span, trace, spans)
	}

	// The two sources of one latency stay apart: DogStatsD's count and the
	// OpenTelemetry one, each under its own name, agree.
	// The client's histogram, each attempt of a call to service2, too.
	var statsd, otel, client float64
	if _, ok := poll(30*time.Second, time.Second, func() bool {
		statsd, _ = promValue(t, prom, `sum(http_server_request_duration_seconds_count{service="service1", route="/users/{id}"})`)
		otel, _ = promValue(t, prom, `sum(otel_http_server_request_duration_seconds_count{job="service1", http_route="/users/{id}"})`)
		client, _ = promValue(t, prom, `sum(otel_http_client_request_duration_seconds_count{job="service1", server_address="service2", url_template="/users/{id}"})`)
		return statsd == 23 && otel == 23 && client >= 23
	}); !ok {
		t.Errorf("requests counted: DogStatsD %v, OpenTelemetry %v, the client's attempts %v; want 23, 23 and 23 or more", statsd, otel, client)
	}
}
