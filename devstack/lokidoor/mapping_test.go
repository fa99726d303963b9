package lokidoor

import (
	"maps"
	"os"
	"reflect"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// TestLokiMapping: resource attributes in the index list become labels,
// everything else structured metadata, names with underscores for dots.
func TestLokiMapping(t *testing.T) {
	r := Record{
		Resource: map[string]string{"service.name": "service1", "deployment.environment.name": "compose", "service.version": "abc"},
		Time:     time.Unix(0, 1), Observed: time.Unix(0, 2),
		SeverityNumber: 13, SeverityText: "WARN", Body: "http request",
		Attrs:   map[string]string{"request_id": "r1", "status": "404", "log.iostream": "stdout"},
		TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331",
	}
	e := r.Loki([]string{"service.name", "deployment.environment.name"})
	wantLabels := map[string]string{"service_name": "service1", "deployment_environment_name": "compose"}
	wantMeta := map[string]string{
		"service_version": "abc", "request_id": "r1", "status": "404", "log_iostream": "stdout",
		"trace_id": r.TraceID, "span_id": r.SpanID, "severity_text": "WARN", "severity_number": "13", "observed_timestamp": "2",
	}
	if !maps.Equal(e.Labels, wantLabels) || !maps.Equal(e.Metadata, wantMeta) || e.Line != "http request" {
		t.Errorf("labels %v, metadata %v, line %q", e.Labels, e.Metadata, e.Line)
	}
}

// TestLokiMappingUnknownService: a record with no service.name (a line
// that no one named) is labelled service_name="unknown_service", as Loki
// labels it, so a LogQL selector still reaches it.
func TestLokiMappingUnknownService(t *testing.T) {
	r := Record{Resource: map[string]string{"deployment.environment.name": "compose"}, Body: "SIGQUIT: quit\n"}
	e := r.Loki([]string{"service.name", "deployment.environment.name"})
	if want := map[string]string{"service_name": "unknown_service", "deployment_environment_name": "compose"}; !maps.Equal(e.Labels, want) {
		t.Errorf("labels %v, want %v", e.Labels, want)
	}
}

// TestLokiIndexLabels: the project's Loki config indexes the service and the
// environment only; a config that keeps Loki's defaults is not understood.
func TestIndexLabels(t *testing.T) {
	b, err := os.ReadFile("../../deploy/loki/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := IndexLabels(b)
	if want := []string{"service.name", "deployment.environment.name"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if _, err := IndexLabels([]byte("limits_config: {}\n")); err == nil {
		t.Error("a config with Loki's default labels was understood")
	}
}

func TestLogQLNames(t *testing.T) {
	for q, want := range map[string][]string{
		`{service_name=~".+", deployment_environment_name="$env"} | severity_text=~"WARN|ERROR" |= "a | b=1"`:     {"deployment_environment_name", "service_name", "severity_text"},
		`sum by (service_name, severity_text) (count_over_time({service_name!=""} [$__auto]))`:                    {"service_name", "severity_text"},
		`{service_name="service1"} | request_id="$request_id" or trace_id = "x" | status >= 500, route!="/a"`:     {"request_id", "route", "service_name", "status", "trace_id"},
		`quantile_over_time(0.99, {service_name="s"} | __error__="" | unwrap duration_ms [1m]) without (span_id)`: {"duration_ms", "service_name", "span_id"},
	} {
		if got := LogQLNames(q); !reflect.DeepEqual(got, want) {
			t.Errorf("%s\n got %v\nwant %v", q, got, want)
		}
	}
}

// TestAsString: a number as Loki stores it, not as Go prints the protobuf.
func TestAsString(t *testing.T) {
	for want, v := range map[string]*commonpb.AnyValue{
		"200":  {Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 200}},
		"1.5":  {Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}},
		"-3":   {Value: &commonpb.AnyValue_IntValue{IntValue: -3}},
		"true": {Value: &commonpb.AnyValue_BoolValue{BoolValue: true}},
		"":     {Value: &commonpb.AnyValue_StringValue{}},
	} {
		if got := asString(v); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
}
