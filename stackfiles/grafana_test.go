package stackfiles

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/failready/failready/internal/metrics"
)

type datasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name, UID, Type, URL string
	} `yaml:"datasources"`
}

func loadYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, path)), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type dashboard struct {
	UID   string `json:"uid"`
	Title string `json:"title"`
	Time  struct {
		From string `json:"from"`
	} `json:"time"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []target `json:"targets"`
}

type target struct {
	Expr       string `json:"expr"`
	Exemplar   bool   `json:"exemplar"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, _ := filepath.Glob(repoRoot + "/deploy/grafana/dashboards/*.json")
	out := map[string]dashboard{}
	for _, f := range files {
		var d dashboard
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// TestGrafanaProvisioning: the datasource points at the compose Prometheus,
// the dashboards provider at the folder compose mounts, and anonymous viewing
// is on.
func TestGrafanaProvisioning(t *testing.T) {
	var ds datasources
	loadYAML(t, "deploy/grafana/provisioning/datasources/datasources.yaml", &ds)
	p := loadCompose(t)
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		uids[d.UID] = true
		u, err := url.Parse(d.URL)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		svc, ok := p.Services[u.Hostname()]
		if !ok || !slices.Contains(ports(svc), u.Port()) {
			t.Errorf("datasource %s: %s is not a compose service and port", d.Name, d.URL)
		}
	}
	if !uids["prometheus"] {
		t.Fatal("no datasource with uid prometheus")
	}

	var prov struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	loadYAML(t, "deploy/grafana/provisioning/dashboards/dashboards.yaml", &prov)
	g := p.Services["grafana"]
	mounts := map[string]string{}
	for _, v := range g.Volumes {
		mounts[v.Target] = v.Source
	}
	if len(prov.Providers) != 1 || !strings.HasSuffix(mounts[prov.Providers[0].Options.Path], "deploy/grafana/dashboards") {
		t.Errorf("the dashboards provider reads %v, compose mounts %v", prov.Providers, mounts)
	}
	if !strings.HasSuffix(mounts["/etc/grafana/provisioning"], "deploy/grafana/provisioning") {
		t.Errorf("provisioning not mounted: %v", mounts)
	}
	env := g.Environment
	if env["GF_AUTH_ANONYMOUS_ENABLED"] == nil || *env["GF_AUTH_ANONYMOUS_ENABLED"] != "true" ||
		env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == nil || *env["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Error("Grafana must let anonymous viewers in (and only view)")
	}
}

// promName matches the metric names in a PromQL expression.
var promName = regexp.MustCompile(`\b([a-z_][a-z0-9_]*_(?:seconds_bucket|seconds_count|seconds_sum|total|connections|requests|info|goroutines|bytes|state|tasks|in_progress|seconds)|slo:[a-z0-9_:]+|ALERTS)\b`)

// TestDashboards: every dashboard parses, has a unique uid, and every panel
// uses a provisioned datasource and queries only metrics the mapping
// produces.
func TestDashboards(t *testing.T) {
	dashboards := loadDashboards(t)
	want := []string{"database.json", "dependency.json", "logs.json", "overview.json", "resilience.json", "runtime.json", "slo.json", "worker.json"}
	for _, w := range want {
		if _, ok := dashboards[w]; !ok {
			t.Errorf("missing dashboard %s", w)
		}
	}
	produced := map[string]bool{}
	for _, m := range metrics.Catalog() {
		if m.Type == "histogram" {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				produced[m.Prometheus+s] = true
			}
		} else {
			produced[m.Prometheus] = true
		}
	}
	// The OpenTelemetry histograms, over OTLP.
	for _, h := range otelHistograms {
		for _, s := range []string{"_bucket", "_count", "_sum"} {
			produced[h.Prometheus+s] = true
		}
	}
	// And what Prometheus makes itself: the recording rules' series, and
	// ALERTS.
	recorded := map[string]bool{"ALERTS": true}
	for _, m := range regexp.MustCompile(`(?m)^\s*- record: (\S+)$`).FindAllStringSubmatch(readFile(t, "deploy/prometheus/rules/slo.yaml"), -1) {
		recorded[m[1]] = true
	}
	mapping := readFile(t, mappingFile)
	uids := map[string]bool{}
	queried := map[string]bool{}
	for file, d := range dashboards {
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q missing or duplicated", file, d.UID)
		}
		uids[d.UID] = true
		if len(d.Panels) < 4 {
			t.Errorf("%s: only %d panels", file, len(d.Panels))
		}
		for _, p := range d.Panels {
			ds := "prometheus"
			if file == "logs.json" {
				ds = "loki" // its LogQL is checked by TestLogsDashboard
			}
			if p.Datasource.UID != ds || len(p.Targets) == 0 {
				t.Errorf("%s / %s: datasource %q, %d targets", file, p.Title, p.Datasource.UID, len(p.Targets))
			}
			if ds == "loki" {
				continue
			}
			for _, tg := range p.Targets {
				names := promName.FindAllString(tg.Expr, -1)
				if len(names) == 0 {
					t.Errorf("%s / %s: no metric found in %q", file, p.Title, tg.Expr)
				}
				for _, n := range names {
					queried[n] = true
					if recorded[n] {
						continue
					}
					if !produced[n] {
						t.Errorf("%s / %s queries %s, which no mapped metric produces", file, p.Title, n)
					}
					if strings.HasPrefix(n, "otel_") {
						continue // not statsd_exporter's
					}
					base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
					if !strings.Contains(mapping, "name: "+base+"\n") {
						t.Errorf("%s is not in %s", base, mappingFile)
					}
				}
			}
		}
	}
	// Every metric is on some panel (the dashboards show what we measure).
	for _, m := range metrics.Catalog() {
		n := m.Prometheus
		if m.Type == "histogram" {
			n += "_bucket"
		}
		if !queried[n] && !queried[m.Prometheus+"_count"] {
			t.Errorf("no panel shows %s", m.Prometheus)
		}
	}
}

// TestPrometheusConfig: scrapes every 5 s, and its targets are compose
// services and ports.
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	loadYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	if cfg.Global.ScrapeInterval != "5s" {
		t.Errorf("scrape_interval %q, want 5s (panels fill within 30 s)", cfg.Global.ScrapeInterval)
	}
	p := loadCompose(t)
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, _ := strings.Cut(target, ":")
				if host == "localhost" {
					host = "prometheus"
				}
				svc, ok := p.Services[host]
				if !ok || !slices.Contains(ports(svc), port) {
					t.Errorf("job %s: target %s is not a compose service and port", sc.JobName, target)
				}
			}
		}
	}
	if !jobs["statsd-exporter"] || !jobs["prometheus"] {
		t.Errorf("jobs %v", jobs)
	}
	m := p.Services["prometheus"]
	if !slices.ContainsFunc(m.Volumes, func(v types.ServiceVolumeConfig) bool {
		return strings.HasSuffix(v.Source, "deploy/prometheus/prometheus.yml") && v.Target == "/etc/prometheus/prometheus.yml"
	}) {
		t.Error("compose does not mount deploy/prometheus/prometheus.yml")
	}
}

// TestToolVersionsMatchImages: make e2e runs the same versions compose runs.
func TestToolVersionsMatchImages(t *testing.T) {
	mk := makefiles(t)
	v := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)`).FindStringSubmatch(mk)
		if m == nil {
			t.Fatalf("Makefile lacks %s", name)
		}
		return m[1]
	}
	p := loadCompose(t)
	if img, want := p.Services["statsd-exporter"].Image, "prom/statsd-exporter:"+v("STATSD_EXPORTER_VERSION"); img != want {
		t.Errorf("statsd-exporter image %s, make installs %s", img, want)
	}
	// Prometheus's Go module v0.3XX.Y is Prometheus v3.XX.Y.
	mod := strings.Split(strings.TrimPrefix(v("PROMETHEUS_MODULE_VERSION"), "v0."), ".")
	minor, _ := strconv.Atoi(mod[0])
	want := "prom/prometheus:v3." + strconv.Itoa(minor-300) + "." + mod[1]
	if img := p.Services["prometheus"].Image; img != want {
		t.Errorf("prometheus image %s, make installs module %s (= %s)", img, v("PROMETHEUS_MODULE_VERSION"), want)
	}
	// Jaeger's module v1.X.Y is tagged on the same commit as Jaeger v2.(X-63).Y.
	jmod := strings.Split(strings.TrimPrefix(v("JAEGER_MODULE_VERSION"), "v1."), ".")
	jminor, _ := strconv.Atoi(jmod[0])
	if want := "2." + strconv.Itoa(jminor-63) + "." + jmod[1]; v("JAEGER_VERSION") != want {
		t.Errorf("Makefile JAEGER_VERSION %s, module %s is Jaeger %s", v("JAEGER_VERSION"), v("JAEGER_MODULE_VERSION"), want)
	}
	if img, want := p.Services["nats"].Image, "nats:"+strings.TrimPrefix(v("NATS_SERVER_VERSION"), "v")+"-alpine"; img != want {
		t.Errorf("nats image %s, make builds nats-server %s", img, want)
	}
	if img, want := p.Services["jaeger"].Image, "jaegertracing/jaeger:"+v("JAEGER_VERSION"); img != want {
		t.Errorf("jaeger image %s, make builds %s", img, want)
	}
	if !slices.ContainsFunc(p.Services["jaeger"].Volumes, func(v types.ServiceVolumeConfig) bool {
		return strings.HasSuffix(v.Source, "deploy/jaeger/config.yaml") && v.Target == "/etc/jaeger/config.yaml"
	}) || !slices.Contains(p.Services["jaeger"].Command, "--config=/etc/jaeger/config.yaml") {
		t.Error("compose does not run Jaeger with deploy/jaeger/config.yaml")
	}
}
