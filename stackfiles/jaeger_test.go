package stackfiles

import (
	"strings"
	"testing"
)

// TestJaegerConfig: Jaeger takes OTLP gRPC where the collector sends it
// (jaeger:4317) and serves its query API where Grafana's data source and the
// published port expect it (16686), both on every interface of its
// container; its in-memory storage is bounded; it does not trace itself.
func TestJaegerConfig(t *testing.T) {
	var cfg struct {
		Service struct {
			Extensions []string `yaml:"extensions"`
			Pipelines  map[string]struct {
				Receivers []string `yaml:"receivers"`
				Exporters []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
		Extensions struct {
			Storage struct {
				Backends map[string]struct {
					Memory *struct {
						MaxTraces int `yaml:"max_traces"`
					} `yaml:"memory"`
				} `yaml:"backends"`
			} `yaml:"jaeger_storage"`
			Query struct {
				Storage struct {
					Traces string `yaml:"traces"`
				} `yaml:"storage"`
				EnableTracing *bool `yaml:"enable_tracing"`
				HTTP          struct {
					Endpoint string `yaml:"endpoint"`
				} `yaml:"http"`
			} `yaml:"jaeger_query"`
		} `yaml:"extensions"`
		Receivers struct {
			OTLP struct {
				Protocols map[string]struct {
					Endpoint string `yaml:"endpoint"`
				} `yaml:"protocols"`
			} `yaml:"otlp"`
		} `yaml:"receivers"`
	}
	loadYAML(t, "deploy/jaeger/config.yaml", &cfg)
	if ep := cfg.Receivers.OTLP.Protocols["grpc"].Endpoint; ep != "0.0.0.0:4317" {
		t.Errorf("OTLP gRPC on %q, want 0.0.0.0:4317 (the collector exports to jaeger:4317)", ep)
	}
	if ep := cfg.Extensions.Query.HTTP.Endpoint; ep != "0.0.0.0:16686" {
		t.Errorf("query API on %q, want 0.0.0.0:16686", ep)
	}
	b, ok := cfg.Extensions.Storage.Backends[cfg.Extensions.Query.Storage.Traces]
	if !ok || b.Memory == nil || b.Memory.MaxTraces <= 0 || b.Memory.MaxTraces > 50000 {
		t.Errorf("the query's storage %q must be in memory with 0 < max_traces <= 50000: %+v", cfg.Extensions.Query.Storage.Traces, b)
	}
	if e := cfg.Extensions.Query.EnableTracing; e == nil || *e {
		t.Error("jaeger_query must set enable_tracing: false (it would send its own spans through the demo's collector)")
	}
	for _, ext := range []string{"jaeger_storage", "jaeger_query"} {
		if !strings.Contains(strings.Join(cfg.Service.Extensions, " "), ext) {
			t.Errorf("extension %s not enabled", ext)
		}
	}
	if p := cfg.Service.Pipelines["traces"]; len(p.Receivers) != 1 || p.Receivers[0] != "otlp" || len(p.Exporters) != 1 {
		t.Errorf("traces pipeline %+v", p)
	}
}
