//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/internal/metrics"
)

// panelQueries returns every PromQL expression of every dashboard, and
// those Jaeger's trace-to-metrics links run.
func panelQueries(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "grafana", "dashboards", "*.json"))
	if len(files) < 4 {
		t.Fatalf("dashboards: %v", files)
	}
	out := map[string]string{}
	for _, f := range files {
		var d struct {
			Panels []struct {
				Title      string `json:"title"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != "prometheus" {
				continue // LogQL: TestLogsThroughTheCollector checks it
			}
			for i, tg := range p.Targets {
				out[fmt.Sprintf("%s / %s #%d", filepath.Base(f), p.Title, i)] = tg.Expr
			}
		}
	}
	// Jaeger's "metrics for this span", for a span of service1's
	// GET /users/{id} (Grafana fills $__tags from the span).
	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			JSONData struct {
				TracesToMetrics struct {
					Queries []struct{ Name, Query string }
				} `yaml:"tracesToMetrics"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "provisioning", "datasources", "datasources.yaml"))
	if err == nil {
		err = yaml.Unmarshal(b, &ds)
	}
	if err != nil {
		t.Fatal(err)
	}
	span := strings.NewReplacer("$__tags", `service="service1", route="/users/{id}"`, "$__rate_interval", "1m")
	for _, d := range ds.Datasources {
		for _, q := range d.JSONData.TracesToMetrics.Queries {
			out["Jaeger's tracesToMetrics / "+q.Name] = span.Replace(strings.ReplaceAll(q.Query, "$$", "$")) // $$: a literal $ in provisioning
		}
	}
	return out
}

// TestMetricsPipeline: load through the real services, the real
// statsd_exporter with the project's mapping and the real Prometheus with the
// project's config; then every series has the labels of the catalog, and
// every Grafana panel's query returns data.
func TestMetricsPipeline(t *testing.T) {
	promtool := toolBin(t, "PROMTOOL_BIN")
	st, _ := startStackWith(t, devstack.Options{
		// The collector's own metrics are scraped too; NATS for the
		// worker's and the outbox's.
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "OTELCOL_BIN", "NATS_SERVER_BIN"),
	})

	if out, err := exec.Command(promtool, "check", "config", filepath.Join(repoRoot, devstack.PrometheusConfigFile)).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}

	// The load generator, as make load runs it: an open loop with the whole mix.
	out, err := exec.Command(bins["cmd/loadgen"], "-target", st.Service1.URL(), "-rate", "40", "-duration", "12s", "-json").Output()
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	var sum struct {
		Requests   int            `json:"requests"`
		Unexpected int            `json:"unexpected"`
		Statuses   map[string]int `json:"statuses"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("loadgen output: %v: %s", err, out)
	}
	t.Logf("loadgen: %s", out)
	if sum.Requests < 400 || sum.Unexpected != 0 {
		t.Fatalf("loadgen: %d requests, %d unexpected answers", sum.Requests, sum.Unexpected)
	}

	// A short MySQL outage, so that the failure metrics exist too.
	if st.MariaDB == nil {
		devstacktest.Missing(t, "needs a private mariadbd to stop, for the failure metrics")
	}
	if err := st.MariaDB.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := call(t, "GET", st.Service1.URL()+"/", "", nil); r.status != 503 {
			t.Fatalf("with MySQL down: %d %s", r.status, r.body)
		}
	}
	if err := st.MariaDB.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	prom := st.Prometheus.URL()
	if _, ok := poll(60*time.Second, time.Second, func() bool {
		return len(promQuery(t, prom, `http_server_request_duration_seconds_count{service="service1"}`).Data.Result) > 0
	}); !ok {
		t.Fatal("no service1 series in Prometheus within 60s")
	}

	// Prometheus scrapes all three jobs of the project's config.
	for _, job := range []string{"statsd-exporter", "prometheus", "otel-collector"} {
		if _, ok := poll(20*time.Second, time.Second, func() bool {
			return len(promQuery(t, prom, `up{job="`+job+`"} == 1`).Data.Result) == 1
		}); !ok {
			t.Errorf("job %s is not up", job)
		}
	}
	if r := promQuery(t, prom, `{job="otel-collector", __name__=~"otelcol_.+"}`); len(r.Data.Result) == 0 {
		t.Error("no otelcol_* series from the collector's own metrics")
	}

	// Every catalog metric exists with exactly its labels (plus Prometheus's
	// job and instance, and le on buckets); no label carries a raw path.
	for _, m := range metrics.Catalog() {
		name := m.Prometheus
		if m.Type == "histogram" {
			name += "_bucket"
		}
		var series []map[string]string
		wait := 20 * time.Second
		if m.Event {
			wait = 0
		}
		poll(wait, time.Second, func() bool { series = promSeries(t, prom, name); return len(series) > 0 })
		if len(series) == 0 {
			if !m.Event { // event metrics are exercised by the chaos tests
				t.Errorf("%s: no series", name)
			}
			continue
		}
		want := append([]string{"__name__", "job", "instance"}, m.Labels...)
		if m.Type == "histogram" {
			want = append(want, "le")
		}
		slices.Sort(want)
		for _, s := range series {
			var got []string
			for k, v := range s {
				got = append(got, k)
				if strings.Contains(v, "/users/1") || strings.Contains(v, "load-") {
					t.Errorf("%s: label %s=%q is a raw path or an ID", name, k, v)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: labels %v, want %v", name, got, want)
				break
			}
		}
	}
	routes := map[string]bool{}
	for _, s := range promSeries(t, prom, `http_server_request_duration_seconds_count{service="service1"}`) {
		routes[s["route"]] = true
	}
	for _, r := range []string{"/", "/users/{id}", "/users", "/honeypot", "unmatched"} {
		if !routes[r] {
			t.Errorf("no service1 series for route %q (have %v)", r, routes)
		}
	}

	// Every panel of every dashboard returns data.
	queries := panelQueries(t)
	var empty map[string]string
	poll(60*time.Second, 2*time.Second, func() bool {
		empty = map[string]string{}
		for panel, expr := range queries {
			r := promQuery(t, prom, expr)
			if r.Status != "success" {
				t.Fatalf("%s: %q: %s", panel, expr, r.Error)
			}
			if len(r.Data.Result) == 0 {
				empty[panel] = expr
			}
		}
		return len(empty) == 0
	})
	for panel, expr := range empty {
		t.Errorf("panel %s returns no data: %s", panel, expr)
	}
	t.Logf("%d panel queries, all with data", len(queries))
}
