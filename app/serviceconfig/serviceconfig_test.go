package serviceconfig_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/app/serviceconfig"
	"github.com/failready/failready/internal/envconfig"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/tracing"
)

func read(vars map[string]string) (serviceconfig.Common, error) {
	env := envconfig.New(func(k string) string { return vars[k] })
	c := serviceconfig.Read(env, ":8000")
	return c, env.Err()
}

// The defaults are the compose stack's.
func TestDefaults(t *testing.T) {
	c, err := read(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":8000" || c.DebugAddr != "" || c.DeploymentID != "local" || c.LogLevel != slog.LevelInfo ||
		c.StatsdAddr != "statsd-exporter:9125" || c.Tracing.Disabled || c.Tracing.Endpoint != "http://otel-collector:4317" ||
		c.Tracing.ExportBatchSize != tracing.DefaultExportBatchSize {
		t.Fatalf("%+v", c)
	}
	if e := c.Exemplars; e.Disabled || e.Endpoint != "http://otel-collector:4317" || e.Interval != exemplars.DefaultInterval {
		t.Fatalf("exemplars %+v", e)
	}
	if h := c.HTTP; h.ReadHeader != 5*time.Second || h.Write != 15*time.Second || h.Drain != 0 || h.Shutdown != 10*time.Second {
		t.Fatalf("timeouts %+v", h)
	}
}

func TestSettings(t *testing.T) {
	c, err := read(map[string]string{
		"LISTEN_ADDR": "127.0.0.1:9000", "DEBUG_ADDR": "127.0.0.1:6060", "LOG_LEVEL": "DEBUG",
		"SHUTDOWN_DRAIN": "5s", "OTEL_SDK_DISABLED": "true", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4317",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317", "OTEL_METRIC_EXPORT_INTERVAL": "15000",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != "127.0.0.1:9000" || c.DebugAddr != "127.0.0.1:6060" || c.LogLevel != slog.LevelDebug ||
		c.HTTP.Drain != 5*time.Second || !c.Tracing.Disabled || c.Tracing.ExportBatchSize != 100 ||
		c.Tracing.Endpoint != "http://b:4317" { // the traces endpoint wins
		t.Fatalf("%+v", c)
	}
	if e := c.Exemplars; !e.Disabled || e.Endpoint != "http://c:4317" || e.Interval != 15*time.Second {
		t.Fatalf("exemplars %+v", e) // the metrics endpoint wins
	}
}

func TestStatsdAddr(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"STATSD_ADDR": "off"}, ""},
		{map[string]string{"STATSD_ADDR": "127.0.0.1:9125"}, "127.0.0.1:9125"},
		{map[string]string{"DD_AGENT_HOST": "agent"}, "agent:8125"},
		{map[string]string{"DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "9999"}, "agent:9999"},
		{map[string]string{"DD_AGENT_HOST": "agent", "STATSD_ADDR": "s:1"}, "s:1"}, // STATSD_ADDR wins
	} {
		if c, err := read(tc.vars); err != nil || c.StatsdAddr != tc.want {
			t.Errorf("%v: %q, %v; want %q", tc.vars, c.StatsdAddr, err, tc.want)
		}
	}
}

// Every bad variable is named, in one error.
func TestErrorsNameEveryVariable(t *testing.T) {
	_, err := read(map[string]string{
		"LISTEN_ADDR": "8000", "DEBUG_ADDR": "nowhere", "LOG_LEVEL": "loud", "SHUTDOWN_DRAIN": "2h",
		"STATSD_ADDR": "no-port", "OTEL_SDK_DISABLED": "yes", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0",
		"OTEL_METRIC_EXPORT_INTERVAL": "5s",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, name := range []string{"LISTEN_ADDR", "DEBUG_ADDR", "LOG_LEVEL", "SHUTDOWN_DRAIN", "STATSD_ADDR",
		"OTEL_SDK_DISABLED", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_METRIC_EXPORT_INTERVAL"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
