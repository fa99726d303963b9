package stackfiles

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/metrics"
)

// otelHistogram is one of the services' OpenTelemetry latency histograms
// (the ones with exemplars): its name in the code, the file that names it,
// and its name in Prometheus once the collector has put "otel." in front
// (deploy/otel-collector/config.yaml) and Prometheus's OTLP receiver has
// turned the dots into underscores and added the unit.
type otelHistogram struct{ Name, Source, Prometheus string }

var otelHistograms = []otelHistogram{
	{exemplars.ServerRequestDuration, "internal/exemplars/http.go", "otel_http_server_request_duration_seconds"},
	{"http.client.request.duration", "service1/client.go", "otel_http_client_request_duration_seconds"},
	{"messaging.process.duration", "worker/welcome.go", "otel_messaging_process_duration_seconds"},
}

// TestExemplarsPath: the histograms the code records are the ones the
// docs and the dashboards name; their Prometheus names collide with none
// of DogStatsD's; every latency panel that shows exemplars reads one of
// them; the Overview dashboard's p99 by route is a graph with exemplars (a
// stat shows none); the Prometheus data source opens an exemplar's trace
// in Jaeger; and Prometheus has the OTLP receiver and exemplar storage on.
func TestExemplarsPath(t *testing.T) {
	dogstatsd := map[string]bool{}
	for _, m := range metrics.Catalog() {
		dogstatsd[m.Prometheus] = true
	}
	doc := readFile(t, "docs/metrics.md")
	for _, h := range otelHistograms {
		if !regexp.MustCompile(`(?m)^\s*(const\s+)?\w+\s*=\s*"` + regexp.QuoteMeta(h.Name) + `"`).MatchString(readFile(t, h.Source)) {
			t.Errorf("%s does not name the histogram %s", h.Source, h.Name)
		}
		if want := "otel_" + strings.ReplaceAll(h.Name, ".", "_") + "_seconds"; h.Prometheus != want {
			t.Errorf("%s: Prometheus name %s, want %s", h.Name, h.Prometheus, want)
		}
		if dogstatsd[h.Prometheus] {
			t.Errorf("%s collides with a DogStatsD series", h.Prometheus)
		}
		if !strings.Contains(doc, "| `"+h.Prometheus+"` |") || !strings.Contains(doc, "`"+h.Name+"`") {
			t.Errorf("docs/metrics.md does not list %s (%s)", h.Prometheus, h.Name)
		}
	}

	withExemplars := map[string]bool{}
	overviewGraph := false
	for file, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if !tg.Exemplar {
					continue
				}
				names := promName.FindAllString(tg.Expr, -1)
				if len(names) != 1 || !strings.HasPrefix(names[0], "otel_") || !strings.HasSuffix(names[0], "_bucket") {
					t.Errorf("%s / %s: exemplars from %v; only the OpenTelemetry histograms carry them", file, p.Title, names)
					continue
				}
				withExemplars[strings.TrimSuffix(names[0], "_bucket")] = true
				if p.Type != "timeseries" {
					t.Errorf("%s / %s: a %s panel shows no exemplars", file, p.Title, p.Type)
				}
				if file == "overview.json" && strings.Contains(tg.Expr, "histogram_quantile(0.99,") {
					overviewGraph = true
				}
			}
		}
	}
	for _, h := range otelHistograms {
		if !withExemplars[h.Prometheus] {
			t.Errorf("no panel shows %s's exemplars", h.Prometheus)
		}
	}
	if !overviewGraph {
		t.Error("the Overview dashboard has no p99 graph with exemplars")
	}

	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			JSONData struct {
				Destinations []struct {
					Name          string `yaml:"name"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	loadYAML(t, "deploy/grafana/provisioning/datasources/datasources.yaml", &ds)
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		uids[d.UID] = true
	}
	linked := false
	for _, d := range ds.Datasources {
		if d.UID != "prometheus" {
			continue
		}
		for _, dest := range d.JSONData.Destinations {
			// Prometheus's OTLP receiver names an exemplar's trace ID trace_id.
			linked = linked || dest.Name == "trace_id" && dest.DatasourceUID == "jaeger" && uids["jaeger"]
		}
	}
	if !linked {
		t.Error("the Prometheus data source does not open an exemplar's trace_id in Jaeger")
	}

	// make local's Prometheus runs with the same flags.
	if len(devstack.PrometheusFlags) != 2 {
		t.Errorf("make local's Prometheus flags %v, want the OTLP receiver and exemplar storage", devstack.PrometheusFlags)
	}
	for _, flag := range devstack.PrometheusFlags {
		if !slices.Contains(loadCompose(t).Services["prometheus"].Command, flag) {
			t.Errorf("compose's Prometheus lacks %s", flag)
		}
		if !strings.Contains(readFile(t, "deploy/kubernetes/dependencies/prometheus.yaml"), "- "+flag+"\n") {
			t.Errorf("Kubernetes's Prometheus lacks %s", flag)
		}
	}
}

// TestJaegerKeepsThePanelsWindow: at make load's rate, Jaeger's store
// holds more than the default window of traces of every dashboard that
// shows exemplars, so that an
// exemplar never opens a trace Jaeger has dropped.
func TestJaegerKeepsThePanelsWindow(t *testing.T) {
	var cfg struct {
		Extensions struct {
			Storage struct {
				Backends map[string]struct {
					Memory struct {
						MaxTraces int `yaml:"max_traces"`
					} `yaml:"memory"`
				} `yaml:"backends"`
			} `yaml:"jaeger_storage"`
		} `yaml:"extensions"`
	}
	loadYAML(t, "deploy/jaeger/config.yaml", &cfg)
	maxTraces := cfg.Extensions.Storage.Backends["memstore"].Memory.MaxTraces
	m := regexp.MustCompile(`(?m)^LOAD_RATE\s*\?=\s*(\d+)$`).FindStringSubmatch(readFile(t, "Makefile"))
	if m == nil {
		t.Fatal("no LOAD_RATE in the Makefile")
	}
	rate, _ := strconv.Atoi(m[1])
	for file, d := range loadDashboards(t) {
		if !slices.ContainsFunc(d.Panels, func(p panel) bool {
			return slices.ContainsFunc(p.Targets, func(tg target) bool { return tg.Exemplar })
		}) {
			continue // no exemplars: no link to a trace
		}
		window, err := time.ParseDuration(strings.TrimPrefix(d.Time.From, "now-"))
		if err != nil {
			t.Fatalf("%s: default window %q: %v", file, d.Time.From, err)
		}
		if need := rate * int(window.Seconds()); maxTraces < need {
			t.Errorf("%s: %s at %d requests a second is %d traces; Jaeger keeps %d", file, window, rate, need, maxTraces)
		}
	}
}
