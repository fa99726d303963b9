package stackfiles

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/failready/failready/devstack"
)

// componentModules maps a collector component type to the module that
// provides it, for the components the project uses.
var componentModules = map[string]string{
	"otlp":           "go.opentelemetry.io/collector/receiver/otlpreceiver",
	"memory_limiter": "go.opentelemetry.io/collector/processor/memorylimiterprocessor",
	"batch":          "go.opentelemetry.io/collector/processor/batchprocessor",
	"otlp_grpc":      "go.opentelemetry.io/collector/exporter/otlpexporter",
	"health_check":   "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension",
	"file_log":       "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver",
	"file_storage":   "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage",
	"otlp_http":      "go.opentelemetry.io/collector/exporter/otlphttpexporter",
	"transform":      "github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor",
}

type collectorConfig struct {
	Extensions map[string]any `yaml:"extensions"`
	Receivers  map[string]struct {
		Protocols map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"protocols"`
	} `yaml:"receivers"`
	Processors map[string]any `yaml:"processors"`
	Exporters  map[string]struct {
		Endpoint string `yaml:"endpoint"`
	} `yaml:"exporters"`
	Service struct {
		Extensions []string `yaml:"extensions"`
		Pipelines  map[string]struct {
			Receivers, Processors, Exporters []string
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

type builderConfig struct {
	Dist struct {
		Version string `yaml:"version"`
	} `yaml:"dist"`
	Receivers, Processors, Exporters, Extensions []struct {
		GoMod string `yaml:"gomod"`
	}
}

// TestCollectorConfigAndManifestAgree: the collector the tests build has
// exactly the components the config uses, at the compose image's version; the
// receivers bind all interfaces; memory_limiter comes first; Jaeger's
// endpoint can be overridden by env.
func TestCollectorConfigAndManifestAgree(t *testing.T) {
	var cfg collectorConfig
	loadYAML(t, "deploy/otel-collector/config.yaml", &cfg)
	var bc builderConfig
	loadYAML(t, "deploy/otel-collector/builder-config.yaml", &bc)

	used := map[string]bool{}
	typ := func(id string) string { return strings.SplitN(id, "/", 2)[0] }
	for name, p := range cfg.Service.Pipelines {
		for _, ids := range [][]string{p.Receivers, p.Processors, p.Exporters} {
			for _, id := range ids {
				used[typ(id)] = true
			}
		}
		if len(p.Processors) == 0 || p.Processors[0] != "memory_limiter" {
			t.Errorf("%s processors %v: memory_limiter first", name, p.Processors)
		}
		// Traces are batched by the batch processor; logs must not be: it
		// holds records in memory after the file_log receiver has moved its
		// offsets past them, so a killed collector would lose them (the
		// exporter's queue on disk is where they wait).
		last := p.Processors[len(p.Processors)-1]
		if name == "traces" && last != "batch" || name == "logs" && slices.Contains(p.Processors, "batch") {
			t.Errorf("%s processors %v: batch last for traces, none for logs", name, p.Processors)
		}
	}
	for _, id := range cfg.Service.Extensions {
		used[typ(id)] = true
	}
	var built []string
	for _, list := range [][]struct {
		GoMod string `yaml:"gomod"`
	}{bc.Receivers, bc.Processors, bc.Exporters, bc.Extensions} {
		for _, c := range list {
			mod, ver, _ := strings.Cut(c.GoMod, " ")
			built = append(built, mod)
			if "v"+bc.Dist.Version != ver {
				t.Errorf("%s at %s, the distribution is %s", mod, ver, bc.Dist.Version)
			}
		}
	}
	for c := range used {
		mod, ok := componentModules[c]
		if !ok || !slices.Contains(built, mod) {
			t.Errorf("config uses %s, which the manifest does not build", c)
		}
	}
	if len(built) != len(used) {
		t.Errorf("the manifest builds %v, the config uses %v", built, used)
	}

	for name, p := range cfg.Receivers["otlp"].Protocols {
		if !strings.HasPrefix(p.Endpoint, "0.0.0.0:") {
			t.Errorf("otlp %s binds %q, want 0.0.0.0 explicitly", name, p.Endpoint)
		}
	}
	if ep := cfg.Exporters["otlp_grpc/jaeger"].Endpoint; ep != "${env:JAEGER_OTLP_ENDPOINT:-jaeger:4317}" {
		t.Errorf("Jaeger endpoint %q must be overridable by env", ep)
	}

	// Versions: the compose image, the Makefile and the manifest agree.
	p := loadCompose(t)
	mk := regexp.MustCompile(`(?m)^OTELCOL_VERSION\s*:=\s*v(\S+)`).FindStringSubmatch(makefiles(t))
	if mk == nil || mk[1] != bc.Dist.Version {
		t.Errorf("Makefile OTELCOL_VERSION %v, manifest %s", mk, bc.Dist.Version)
	}
	if img := p.Services["otel-collector"].Image; img != "otel/opentelemetry-collector-contrib:"+bc.Dist.Version {
		t.Errorf("collector image %s, manifest version %s", img, bc.Dist.Version)
	}
	if p.Services["otel-collector"].Environment["JAEGER_OTLP_ENDPOINT"] == nil {
		t.Error("compose does not point the collector at Jaeger")
	}
}

// TestServicesSendTracesToTheCollector: both services have the OTLP endpoint
// of the compose collector, over plain gRPC.
func TestServicesSendTracesToTheCollector(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"service1", "service2"} {
		ep := p.Services[name].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
		if ep == nil || *ep != "http://otel-collector:4317" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %v", name, ep)
		}
	}
}

// TestCollectorReadsContainerLogs: in compose the collector reads Docker's
// container log files, read-only, from where the config looks for them
// (CONTAINER_LOGS_DIR's default), as root (they are root's), and keeps its
// offsets and queue on a volume at COLLECTOR_STORAGE_DIR's default.
func TestCollectorReadsContainerLogs(t *testing.T) {
	cfg := readFile(t, "deploy/otel-collector/config.yaml")
	for _, want := range []string{"${env:CONTAINER_LOGS_DIR:-/var/lib/docker/containers}/*/*-json.log",
		"${env:COLLECTOR_STORAGE_DIR:-/var/lib/otelcol/file_storage}", "${env:LOKI_OTLP_ENDPOINT:-http://loki:3100/otlp}"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the collector config lacks %s", want)
		}
	}
	c := loadCompose(t).Services["otel-collector"]
	if c.User != "0" {
		t.Errorf("the collector runs as %q: it cannot read root's log files", c.User)
	}
	var logs, storage bool
	for _, v := range c.Volumes {
		logs = logs || (v.Source == "/var/lib/docker/containers" && v.Target == "/var/lib/docker/containers" && v.ReadOnly)
		storage = storage || (v.Type == "volume" && v.Target == "/var/lib/otelcol/file_storage")
	}
	if !logs || !storage {
		t.Errorf("the collector's volumes %+v: want the container logs read-only and a volume for file_storage", c.Volumes)
	}
}

// TestCollectorFeatureGates: compose and Kubernetes start the collector
// with the feature gates make e2e and make local give it
// (devstack.CollectorFeatureGates): the logs survive a killed collector
// only with them.
func TestCollectorFeatureGates(t *testing.T) {
	if c := loadCompose(t).Services["otel-collector"].Command; !slices.Contains(c, devstack.CollectorFeatureGates) {
		t.Errorf("compose's collector command %q lacks %s", c, devstack.CollectorFeatureGates)
	}
	found := false
	for _, o := range k8sObjects(t, "dependencies") {
		if o.kind() != "DaemonSet" && o.kind() != "Deployment" || o.name() != "otel-collector" {
			continue
		}
		found = true
		args, _ := get(o.doc, "spec", "template", "spec", "containers", 0, "args").([]any)
		if !slices.Contains(args, any(devstack.CollectorFeatureGates)) {
			t.Errorf("%s: the collector's args %q lack %s", o.file, args, devstack.CollectorFeatureGates)
		}
	}
	if !found {
		t.Error("no otel-collector workload in deploy/kubernetes/dependencies")
	}
}

// TestVendorFanOutIsAnOverlay: the vendor fan-out (vendor.yaml) only adds:
// each pipeline's exporters are config.yaml's with the vendor's appended
// (lists are replaced when configs merge, so a drift would drop Jaeger or
// Loki), but for the metrics, which reach the vendor by a pipeline of their
// own without the renaming that is only for Prometheus; its exporter reads its endpoint and headers from the environment,
// config.yaml alone names no vendor, and compose's override runs the
// collector as docker-compose.yml does, with vendor.yaml added, mounted and
// its settings passed on.
func TestVendorFanOutIsAnOverlay(t *testing.T) {
	var base, vendor collectorConfig
	loadYAML(t, devstack.CollectorConfigFile, &base)
	loadYAML(t, devstack.VendorConfigFile, &vendor)
	const exporter = "otlp_http/vendor"
	if e, ok := vendor.Exporters[exporter]; !ok || e.Endpoint != "${env:VENDOR_OTLP_ENDPOINT}" || len(vendor.Exporters) != 1 {
		t.Errorf("vendor.yaml's exporters: %+v; want only %s, its endpoint from VENDOR_OTLP_ENDPOINT", vendor.Exporters, exporter)
	}
	for name, p := range base.Service.Pipelines {
		if slices.Contains(p.Exporters, exporter) {
			t.Errorf("config.yaml's %s pipeline names the vendor: an unset vendor must change nothing", name)
		}
		if name == "metrics" {
			if _, ok := vendor.Service.Pipelines[name]; ok {
				t.Error("vendor.yaml changes the metrics pipeline to Prometheus")
			}
			v := vendor.Service.Pipelines["metrics/vendor"]
			if !slices.Equal(v.Receivers, p.Receivers) || !slices.Equal(v.Exporters, []string{exporter}) ||
				!slices.Equal(v.Processors, slices.DeleteFunc(slices.Clone(p.Processors), func(s string) bool { return strings.HasPrefix(s, "transform/") })) {
				t.Errorf("vendor.yaml's metrics/vendor pipeline: %+v; want the metrics pipeline's receivers and processors, but for the renaming, to the vendor only", v)
			}
			continue
		}
		v, ok := vendor.Service.Pipelines[name]
		if want := append(slices.Clone(p.Exporters), exporter); !ok || !slices.Equal(v.Exporters, want) {
			t.Errorf("vendor.yaml's %s exporters: %v, want %v", name, v.Exporters, want)
		}
		if len(v.Receivers)+len(v.Processors) > 0 {
			t.Errorf("vendor.yaml's %s pipeline changes more than its exporters: %+v", name, v)
		}
	}
	if len(vendor.Service.Pipelines) != len(base.Service.Pipelines) {
		t.Errorf("vendor.yaml's pipelines: %v, config.yaml's: %v", vendor.Service.Pipelines, base.Service.Pipelines)
	}

	plain := loadCompose(t)
	with := loadComposeFiles(t, []string{"docker-compose.yml", "deploy/otel-collector/vendor.compose.yaml"},
		"VENDOR_OTLP_ENDPOINT=https://otlp.vendor.example", `VENDOR_OTLP_HEADERS={"api-key": "k"}`)
	p, w := plain.Services["otel-collector"], with.Services["otel-collector"]
	var cmd []string
	for _, a := range p.Command {
		cmd = append(cmd, a)
		if a == "--config=/etc/otelcol-contrib/config.yaml" {
			cmd = append(cmd, "--config=/etc/otelcol-contrib/vendor.yaml")
		}
	}
	if !slices.Equal([]string(w.Command), cmd) {
		t.Errorf("the collector's command with the vendor: %q, want %q", w.Command, cmd)
	}
	if w.Environment["VENDOR_OTLP_ENDPOINT"] == nil || *w.Environment["VENDOR_OTLP_ENDPOINT"] != "https://otlp.vendor.example" ||
		w.Environment["VENDOR_OTLP_HEADERS"] == nil || *w.Environment["VENDOR_OTLP_HEADERS"] != `{"api-key": "k"}` {
		t.Errorf("the collector's vendor settings: %v", w.Environment)
	}
	if p.Environment["VENDOR_OTLP_ENDPOINT"] != nil {
		t.Error("docker-compose.yml alone passes a vendor endpoint")
	}
	src, err := filepath.Abs(filepath.Join(repoRoot, devstack.VendorConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, v := range w.Volumes {
		mounted = mounted || (v.Target == "/etc/otelcol-contrib/vendor.yaml" && v.Source == src && v.ReadOnly)
	}
	if !mounted || len(w.Volumes) != len(p.Volumes)+1 {
		t.Errorf("the collector's volumes with the vendor: %+v; want compose's and vendor.yaml, read-only", w.Volumes)
	}
}
