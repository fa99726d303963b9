package stackfiles

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/devstack/lokidoor"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
)

// serviceLines are real lines of the services' logging: an access line of
// a traced request, with its request ID.
func serviceLines(t *testing.T) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	logger := logging.New(&buf, logging.Options{Service: "service1", Version: "abc1234", DeploymentID: "compose"})
	r := chi.NewRouter()
	r.Use(requestid.Middleware(logger), logging.AccessLog(logger))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		logger.WarnContext(r.Context(), "user not found")
		w.WriteHeader(http.StatusNotFound)
	})
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled})
	req := httptest.NewRequestWithContext(trace.ContextWithSpanContext(context.Background(), sc), "GET", "/users/7", nil)
	r.ServeHTTP(httptest.NewRecorder(), req)
	var lines []map[string]any
	for l := range bytes.Lines(buf.Bytes()) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[1]["msg"] != "http request" || lines[1]["trace_id"] == nil {
		t.Fatalf("want a handler's line and an access line with a trace: %v", lines)
	}
	return lines
}

type stanzaOp struct {
	Type, ID string
	From, To string
	Field    string
	Expr     string
	Severity struct {
		ParseFrom string `yaml:"parse_from"`
	}
	Trace map[string]struct {
		ParseFrom string `yaml:"parse_from"`
	}
}

func logOperators(t *testing.T) []stanzaOp {
	t.Helper()
	var c struct {
		Receivers map[string]struct {
			Operators []stanzaOp `yaml:"operators"`
		} `yaml:"receivers"`
	}
	loadYAML(t, "deploy/otel-collector/config.yaml", &c)
	ops := c.Receivers["file_log/containers"].Operators
	if len(ops) == 0 {
		t.Fatal("no operators in the file_log/containers receiver")
	}
	return ops
}

// lokiNames are the names Loki has for a services' line after the
// collector's pipeline: the index labels and the structured metadata, from
// the pipeline's operators (json_parser, move, remove) applied to a real
// line and Loki's OTLP mapping with the project's Loki config.
func lokiNames(t *testing.T) map[string]bool {
	t.Helper()
	indexed, err := lokidoor.IndexLabels([]byte(readFile(t, "deploy/loki/config.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	attr := regexp.MustCompile(`^attributes\.(\w+)$`)
	res := regexp.MustCompile(`^resource\["([\w.]+)"\]$`)
	for _, line := range serviceLines(t) {
		rec := lokidoor.Record{Resource: map[string]string{}, Attrs: map[string]string{}}
		for k, v := range line {
			rec.Attrs[k] = fmt.Sprint(v) // as Loki would print it: 404, not 4.04e+02
		}
		for _, op := range logOperators(t) {
			if op.ID == "container_service" || op.ID == "container_attrs" {
				continue // Docker's entry, not the line: the line's own service wins
			}
			switch op.Type {
			case "json_parser":
				if m := attr.FindStringSubmatch(op.Severity.ParseFrom); m != nil {
					rec.SeverityText = rec.Attrs[m[1]]
				}
				if m := attr.FindStringSubmatch(op.Trace["trace_id"].ParseFrom); m != nil {
					rec.TraceID = rec.Attrs[m[1]]
				}
				if m := attr.FindStringSubmatch(op.Trace["span_id"].ParseFrom); m != nil {
					rec.SpanID = rec.Attrs[m[1]]
				}
			case "move":
				m := attr.FindStringSubmatch(op.From)
				if m == nil {
					t.Fatalf("move from %q: not an attribute", op.From)
				}
				v, ok := rec.Attrs[m[1]]
				if !ok {
					t.Errorf("the pipeline moves %s, which the line %v lacks", op.From, line)
				}
				delete(rec.Attrs, m[1])
				if r := res.FindStringSubmatch(op.To); r != nil {
					rec.Resource[r[1]] = v
				} else if op.To == "body" {
					rec.Body = v
				}
			case "remove":
				if m := attr.FindStringSubmatch(op.Field); m != nil {
					delete(rec.Attrs, m[1])
				}
			}
		}
		rec.Attrs["log.iostream"] = "stdout" // the container operator's
		e := rec.Loki(indexed)
		for k := range e.Labels {
			names[k] = true
		}
		for k := range e.Metadata {
			names[k] = true
		}
	}
	for _, want := range []string{"service_name", "deployment_environment_name", "request_id", "trace_id", "route", "status"} {
		if !names[want] {
			t.Errorf("Loki would not have %s: %v", want, names)
		}
	}
	return names
}

// TestLokiIndexesFewLabels: Loki indexes the service and the environment,
// nothing that varies per request; those are structured metadata.
func TestLokiIndexesFewLabels(t *testing.T) {
	indexed, err := lokidoor.IndexLabels([]byte(readFile(t, "deploy/loki/config.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(indexed, []string{"service.name", "deployment.environment.name"}) {
		t.Errorf("Loki indexes %v", indexed)
	}
	loki := loadCompose(t).Services["loki"]
	if !strings.HasPrefix(loki.Image, "grafana/loki:3.") {
		t.Errorf("loki image %q, want grafana/loki 3.x", loki.Image)
	}
	var mounted bool
	for _, v := range loki.Volumes {
		mounted = mounted || (strings.HasSuffix(v.Source, "deploy/loki/config.yaml") && slices.Contains(loki.Command, "-config.file="+v.Target))
	}
	if !mounted {
		t.Errorf("loki does not run deploy/loki/config.yaml: %v %v", loki.Command, loki.Volumes)
	}
	cfg := readFile(t, "deploy/loki/config.yaml")
	for _, want := range []string{"retention_enabled: true", "retention_period: 72h", "allow_structured_metadata: true"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the Loki config lacks %q", want)
		}
	}
}

// TestLogPipelineDropsOnlySuccessfulProbes: the collector's filter names
// exactly the services' probe paths, and keeps any WARN or ERROR line.
func TestLogPipelineDropsOnlySuccessfulProbes(t *testing.T) {
	var filters []stanzaOp
	for _, op := range logOperators(t) {
		if op.Type == "filter" {
			filters = append(filters, op)
		}
	}
	if len(filters) != 1 || filters[0].ID != "drop_probes" {
		t.Fatalf("filters %+v: want drop_probes only", filters)
	}
	expr := filters[0].Expr
	paths := regexp.MustCompile(`attributes\.route in \[([^\]]*)\]`).FindStringSubmatch(expr)
	var got []string
	if paths != nil {
		for _, p := range strings.Split(paths[1], ",") {
			got = append(got, strings.Trim(strings.TrimSpace(p), `"`))
		}
	}
	if !slices.Equal(got, health.Paths()) {
		t.Errorf("drop_probes drops the routes %v; the probes are %v", got, health.Paths())
	}
	for _, must := range []string{`attributes.status < 400`, `attributes.level in ["DEBUG", "INFO"]`, `attributes.msg == "http request"`} {
		if !strings.Contains(expr, must) {
			t.Errorf("drop_probes %q lacks %q", expr, must)
		}
	}
}

type grafanaDatasource struct {
	Name, UID, Type string
	JSONData        struct {
		DerivedFields []struct {
			Name, URL     string
			MatcherType   string `yaml:"matcherType"`
			MatcherRegex  string `yaml:"matcherRegex"`
			DatasourceUID string `yaml:"datasourceUid"`
		} `yaml:"derivedFields"`
		TracesToLogs struct {
			DatasourceUID string `yaml:"datasourceUid"`
			CustomQuery   bool   `yaml:"customQuery"`
			Query         string
		} `yaml:"tracesToLogsV2"`
		TracesToMetrics struct {
			DatasourceUID string `yaml:"datasourceUid"`
			Tags          []struct{ Key, Value string }
			Queries       []struct{ Name, Query string }
		} `yaml:"tracesToMetrics"`
	} `yaml:"jsonData"`
}

// TestGrafanaLinks: logs, traces and metrics point at each other through
// names that exist. Loki's derived field reads a name the pipeline gives
// each line and opens it in Jaeger; Jaeger's trace-to-logs query reads names
// Loki has; its trace-to-metrics tags are labels of the request histogram,
// taken from span attributes the services set.
func TestGrafanaLinks(t *testing.T) {
	var ds struct {
		Datasources []grafanaDatasource `yaml:"datasources"`
	}
	loadYAML(t, "deploy/grafana/provisioning/datasources/datasources.yaml", &ds)
	byUID := map[string]grafanaDatasource{}
	for _, d := range ds.Datasources {
		byUID[d.UID] = d
	}
	names := lokiNames(t)
	loki, jaeger := byUID["loki"], byUID["jaeger"]
	if loki.Type != "loki" || jaeger.Type != "jaeger" {
		t.Fatalf("datasources %v: want loki and jaeger", byUID)
	}
	if len(loki.JSONData.DerivedFields) == 0 {
		t.Error("Loki has no derived field to the traces")
	}
	for _, f := range loki.JSONData.DerivedFields {
		if byUID[f.DatasourceUID].Type != "jaeger" || f.URL != "$${__value.raw}" {
			t.Errorf("derived field %s: to %q with %q, want the Jaeger datasource with the raw value", f.Name, f.DatasourceUID, f.URL)
		}
		if f.MatcherType != "label" || !names[f.MatcherRegex] {
			t.Errorf("derived field %s matches %s %q; Loki's names for a line are %v", f.Name, f.MatcherType, f.MatcherRegex, names)
		}
	}
	tl := jaeger.JSONData.TracesToLogs
	if byUID[tl.DatasourceUID].Type != "loki" || !tl.CustomQuery || !strings.Contains(tl.Query, "$${__trace.traceId}") {
		t.Errorf("tracesToLogsV2 %+v: want a Loki query by the trace's ID", tl)
	}
	for _, n := range lokidoor.LogQLNames(tl.Query) {
		if !names[n] {
			t.Errorf("tracesToLogsV2 reads %s, which Loki does not have", n)
		}
	}
	tm := jaeger.JSONData.TracesToMetrics
	if byUID[tm.DatasourceUID].Type != "prometheus" || len(tm.Queries) < 3 {
		t.Errorf("tracesToMetrics %+v: want RED queries in Prometheus", tm)
	}
	var hist metrics.Metric
	for _, m := range metrics.Catalog() {
		if m.Prometheus == "http_server_request_duration_seconds" {
			hist = m
		}
	}
	spanAttrs := map[string]bool{"service.name": true, "http.route": true} // resource, and tracing.Middleware's
	for _, tag := range tm.Tags {
		if !spanAttrs[tag.Key] || !slices.Contains(hist.Labels, tag.Value) {
			t.Errorf("tracesToMetrics tag %s → %s: want a span attribute and a label of %s %v", tag.Key, tag.Value, hist.Prometheus, hist.Labels)
		}
	}
	for _, q := range tm.Queries {
		if !strings.Contains(q.Query, "{$$__tags") || len(promName.FindAllString(q.Query, -1)) == 0 {
			t.Errorf("tracesToMetrics %s: %q filters by no tag or queries no metric", q.Name, q.Query)
		}
	}
}

// TestLogsDashboard: the Logs dashboard's LogQL reads only names Loki has
// for the services' lines (or its own variables), and every link between
// dashboards opens one that exists with variables it has.
func TestLogsDashboard(t *testing.T) {
	names := lokiNames(t)
	raw := map[string]map[string]any{}
	for file := range loadDashboards(t) {
		var d map[string]any
		if err := json.Unmarshal([]byte(readFile(t, "deploy/grafana/dashboards/"+file)), &d); err != nil {
			t.Fatal(err)
		}
		raw[d["uid"].(string)] = d
	}
	logs := raw["failready-logs"]
	if logs == nil {
		t.Fatal("no dashboard failready-logs")
	}
	vars := func(d map[string]any) []string {
		var out []string
		for _, v := range d["templating"].(map[string]any)["list"].([]any) {
			out = append(out, v.(map[string]any)["name"].(string))
		}
		return out
	}
	if !slices.Contains(vars(logs), "request_id") {
		t.Error("the Logs dashboard has no request_id variable")
	}
	var one bool
	for _, p := range logs["panels"].([]any) {
		p := p.(map[string]any)
		for _, tg := range p["targets"].([]any) {
			expr := tg.(map[string]any)["expr"].(string)
			for _, n := range lokidoor.LogQLNames(expr) {
				if !names[n] {
					t.Errorf("%s reads %s, which Loki does not have for the services' lines", p["title"], n)
				}
			}
			one = one || strings.Contains(expr, `request_id="$request_id"`)
		}
	}
	if !one {
		t.Error("no panel shows one request's lines by $request_id")
	}

	link := regexp.MustCompile(`^/d/([\w-]+)/[\w-]+\?(.*)$`)
	var links int
	for uid, d := range raw {
		for _, p := range d["panels"].([]any) {
			p := p.(map[string]any)
			all, _ := p["links"].([]any)
			if fc, ok := p["fieldConfig"].(map[string]any); ok {
				dl, _ := fc["defaults"].(map[string]any)["links"].([]any)
				all = append(all, dl...)
			}
			for _, l := range all {
				u := l.(map[string]any)["url"].(string)
				m := link.FindStringSubmatch(u)
				if m == nil || raw[m[1]] == nil {
					t.Errorf("%s / %s links to %q: no such dashboard", uid, p["title"], u)
					continue
				}
				links++
				for _, kv := range strings.Split(m[2], "&") {
					if v, ok := strings.CutPrefix(kv, "var-"); ok {
						if name, _, _ := strings.Cut(v, "="); !slices.Contains(vars(raw[m[1]]), name) {
							t.Errorf("%s / %s sets %s, which %s does not have", uid, p["title"], name, m[1])
						}
					}
				}
			}
		}
	}
	if links < 2 {
		t.Errorf("%d links between dashboards; want the overview's error and latency panels to lead to the logs", links)
	}
}
