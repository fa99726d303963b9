//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/lokidoor"
)

// appliedLine is kubectl's line for an object the dry run accepted.
var appliedLine = regexp.MustCompile(`(?m)^(\S+)/(\S+) serverside-applied \(server dry run\)$`)

// TestKubernetesManifestsOnARealAPIServer is make k8s-validate: every
// object that make k8s-up would apply — KEDA's release, then every overlay
// of deploy/kubernetes — goes through a real kube-apiserver as a
// server-side dry run with strict field validation, against the CRDs of the
// pinned KEDA; the namespaces and CRDs are created for real first (a dry
// run cannot see what another dry run made). And the check refuses a
// manifest broken in each way it is meant to catch.
func TestKubernetesManifestsOnARealAPIServer(t *testing.T) {
	k := startKubeAPI(t)

	// KEDA: its namespace and CRDs for real, everything else dry. (Its
	// webhook configuration, created for real, would send every
	// ScaledObject below to a webhook server that does not run here.)
	keda := splitManifests(t, kedaRelease(t))
	crds := kinds(keda, true, "Namespace", "CustomResourceDefinition")
	if len(kinds(crds, true, "CustomResourceDefinition")) < 4 {
		t.Fatalf("KEDA's release has %d CRDs", len(kinds(crds, true, "CustomResourceDefinition")))
	}
	k.mustRun(t, join(t, crds), "apply", "--server-side", "--field-manager=failready", "-f", "-")
	k.mustRun(t, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	out := k.mustRun(t, join(t, kinds(keda, false, "Namespace", "CustomResourceDefinition")), dryRun...)
	t.Logf("KEDA %s: %d objects accepted", os.Getenv("KEDA_VERSION"), len(appliedLine.FindAllString(out, -1)))

	overlays, err := filepath.Glob(filepath.Join(repoRoot, "deploy/kubernetes/overlays/*/kustomization.yaml"))
	if err != nil || len(overlays) == 0 {
		t.Fatalf("no overlays: %v", err)
	}
	for _, o := range overlays {
		dir := filepath.Dir(o)
		ms := splitManifests(t, kustomize(t, dir))
		k.mustRun(t, join(t, kinds(ms, true, "Namespace")), "apply", "--server-side", "--field-manager=failready", "-f", "-")
		out := k.mustRun(t, join(t, ms), dryRun...)
		applied := appliedLine.FindAllStringSubmatch(out, -1)
		if len(applied) != len(ms) {
			t.Fatalf("%s: %d objects, %d accepted:\n%s", dir, len(ms), len(applied), out)
		}
		// Pod Security warnings (the namespace warns on "restricted"):
		// kubectl prints each before its object's line; only the
		// collector, which reads the node's log files, may have one.
		lines := strings.Split(out, "\n")
		collectorWarned := false
		for i, l := range lines {
			if !strings.HasPrefix(l, "Warning:") {
				continue
			}
			j := i
			for j < len(lines) && !appliedLine.MatchString(lines[j]) {
				j++
			}
			if j == len(lines) || !strings.HasPrefix(lines[j], "daemonset.apps/otel-collector ") {
				t.Errorf("%s: a warning that is not the collector's: %s (before %q)", dir, l, lines[min(j, len(lines)-1)])
				continue
			}
			collectorWarned = true
			t.Logf("the collector's expected Pod Security warning: %s", l)
		}
		// The check works only if Pod Security warns at all.
		if !collectorWarned {
			t.Errorf("%s: no Pod Security warning for the collector (hostPath, root): is the namespace's warn label applied?", dir)
		}
		t.Logf("%s: all %d objects accepted by kube-apiserver %s (server-side dry run, strict validation)",
			filepath.Base(dir), len(ms), os.Getenv("KUBERNETES_VERSION"))

		// The check refuses what it must: one break at a time, of
		// objects that were just accepted.
		pick := func(kind, name string) manifest {
			for _, m := range ms {
				if m.Kind == kind && m.Name == name {
					return m
				}
			}
			t.Fatalf("%s: no %s %s", dir, kind, name)
			return manifest{}
		}
		for _, c := range []struct {
			what, kind, name string
			brk              func(doc map[string]any)
			want             string
		}{
			{"an unknown field", "Deployment", "service1", func(doc map[string]any) {
				container(doc)["imagePullPolcy"] = "IfNotPresent"
			}, `.spec.template.spec.containers[name="service1"].imagePullPolcy: field not declared in schema`},
			{"a wrong type", "Deployment", "service2", func(doc map[string]any) {
				path(doc, "spec")["revisionHistoryLimit"] = "three"
			}, ".spec.revisionHistoryLimit: expected numeric (int or float), got string"},
			{"a missing required field", "Deployment", "worker", func(doc map[string]any) {
				delete(path(doc, "spec"), "selector")
			}, "spec.selector: Required value"},
			{"an unknown field in a ScaledObject (KEDA's CRD)", "ScaledObject", "service1", func(doc map[string]any) {
				path(doc, "spec")["minReplicas"] = 2
			}, ".spec.minReplicas: field not declared in schema"},
			{"a missing required field in a ScaledObject", "ScaledObject", "worker", func(doc map[string]any) {
				delete(path(doc, "spec"), "scaleTargetRef")
			}, "spec.scaleTargetRef: Required value"},
			{"a wrong type in a ScaledObject", "ScaledObject", "service2", func(doc map[string]any) {
				path(doc, "spec")["maxReplicaCount"] = "four"
			}, ".spec.maxReplicaCount: expected numeric (int or float), got string"},
		} {
			m := pick(c.kind, c.name)
			var doc map[string]any
			if err := yaml.Unmarshal(m.yaml(t), &doc); err != nil { // a deep copy
				t.Fatal(err)
			}
			c.brk(doc)
			out, err := k.run(join(t, []manifest{{Kind: m.Kind, Name: m.Name, doc: doc}}), dryRun...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("%s: %s in %s %s: want refused with %q, got err %v:\n%s", dir, c.what, c.kind, c.name, c.want, err, out)
				continue
			}
			t.Logf("refused, as it must be: %s in %s %s: …%s…", c.what, c.kind, c.name, c.want)
		}
	}
}

// path walks maps down keys.
func path(doc map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		doc = doc[k].(map[string]any)
	}
	return doc
}

// container is a workload's first container.
func container(doc map[string]any) map[string]any {
	return path(doc, "spec", "template", "spec")["containers"].([]any)[0].(map[string]any)
}

// mixRun is one step of loadgen's default mix.
type mixRun struct {
	Rate       int            `json:"rate"`
	Requests   int            `json:"requests"`
	Throughput float64        `json:"throughput"`
	Unexpected int            `json:"unexpected"`
	P99        float64        `json:"p99_ms"`
	Statuses   map[string]int `json:"statuses"`
}

// runMix drives loadgen's default mix (reads, writes, errors on purpose)
// at rate for d.
func runMix(t *testing.T, target string, rate int, d time.Duration, only ...string) mixRun {
	t.Helper()
	args := []string{"-target", target, "-rate", strconv.Itoa(rate), "-duration", d.String(), "-json"}
	if len(only) > 0 {
		args = append(args, "-only", only[0])
	}
	var out bytes.Buffer
	cmd := exec.Command(bins["cmd/loadgen"], args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	var r mixRun
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("loadgen: %v: %s", err, out.Bytes())
	}
	return r
}

// scaledObjects reads deploy/kubernetes/base/autoscaling.yaml: each
// ScaledObject's triggers by type, their metadata.
func scaledObjects(t *testing.T) map[string]map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/kubernetes/base/autoscaling.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]string{}
	for _, m := range splitManifests(t, b) {
		var so struct {
			Spec struct {
				Triggers []struct {
					Type     string            `yaml:"type"`
					Metadata map[string]string `yaml:"metadata"`
				} `yaml:"triggers"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(m.yaml(t), &so); err != nil {
			t.Fatal(err)
		}
		out[m.Name] = map[string]map[string]string{}
		for _, tr := range so.Spec.Triggers {
			out[m.Name][tr.Type] = tr.Metadata
		}
	}
	return out
}

// jetStreamLag reads NATS's monitoring endpoint as KEDA's nats-jetstream
// scaler does (pkg/scalers/nats_jetstream_scaler.go at KEDA's pinned
// version: /jsz?acc=ACCOUNT&consumers=true&config=true, the account by name
// or ID, the stream and consumer by name), and returns its lag:
// num_pending + num_ack_pending.
func jetStreamLag(t *testing.T, monitor, account, stream, consumer string) (pending, ackPending int) {
	t.Helper()
	u := "http://" + monitor + "/jsz?" + url.Values{"acc": {account}, "consumers": {"true"}, "config": {"true"}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jsz struct {
		Accounts []struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Streams []struct {
				Name      string `json:"name"`
				Consumers []struct {
					Name          string `json:"name"`
					NumPending    int    `json:"num_pending"`
					NumAckPending int    `json:"num_ack_pending"`
				} `json:"consumer_detail"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	for _, a := range jsz.Accounts {
		if a.Name != account && a.ID != account {
			continue
		}
		for _, s := range a.Streams {
			if s.Name != stream {
				continue
			}
			for _, c := range s.Consumers {
				if c.Name == consumer {
					return c.NumPending, c.NumAckPending
				}
			}
		}
	}
	t.Fatalf("%s: no account %s, stream %s, consumer %s", u, account, stream, consumer)
	return 0, 0
}

// TestKubernetesScalingSignals: what each ScaledObject reads, read from the
// real programs under load, as KEDA would read it.
//
//   - service1's prometheus trigger: its query, run against the real
//     Prometheus (with the project's config, scraping the real
//     statsd_exporter) while loadgen drives a known rate, returns that rate:
//     the total of every replica (statsd_exporter sums them), which the HPA
//     divides by the replicas (AverageValue) and holds against the
//     threshold. A query that also counted service2's requests, or probes,
//     would be off by 2×.
//   - the worker's nats-jetstream trigger: NATS's monitoring endpoint, read
//     as KEDA's scaler reads it, under a backlog (a slow worker: 2 at once,
//     10 s each), reports the lag that the worker dashboard's queue panel
//     shows (pending + unacknowledged), within what the gauges' 5 s sampling
//     and scrape allow.
func TestKubernetesScalingSignals(t *testing.T) {
	triggers := scaledObjects(t)
	prom, nats := triggers["service1"]["prometheus"], triggers["worker"]["nats-jetstream"]
	if prom == nil || nats == nil {
		t.Fatalf("autoscaling.yaml: no prometheus trigger on service1 or nats-jetstream trigger on the worker: %v", triggers)
	}
	st, _ := startStackWith(t, devstack.Options{
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "NATS_SERVER_BIN"),
		NATS:      devstack.NATSOptions{Workers: 1},
		Env: map[string][]string{
			"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"},
			"worker":   {"TASK_LATENCY=10s", "WORKER_CONCURRENCY=2"},
		}})

	// The query's window is 1 minute: a load of 75 s fills it.
	const rate = 60
	threshold, err := strconv.ParseFloat(prom["threshold"], 64)
	if err != nil {
		t.Fatalf("service1's threshold %q: %v", prom["threshold"], err)
	}
	load := runMix(t, st.Service1.URL(), rate, 75*time.Second)
	if load.Unexpected != 0 {
		t.Fatalf("%d unexpected answers under the load", load.Unexpected)
	}
	// The last scrapes of the load's end, within 2 intervals.
	got, ok := 0.0, false
	poll(10*time.Second, time.Second, func() bool {
		got, ok = promValue(t, st.Prometheus.URL(), prom["query"])
		return ok && math.Abs(got-rate)/rate <= 0.15
	})
	if !ok || math.Abs(got-rate)/rate > 0.15 {
		t.Fatalf("service1's KEDA query %q returned %v (ok %v) under %d requests/s, want within 15 %%", prom["query"], got, ok, rate)
	}
	t.Logf("service1: the prometheus trigger's query returns %.1f requests/s under loadgen's %d/s; against the threshold of %.0f a replica, the HPA asks for ceil(%.1f / %.0f) = %.0f replica(s) (then minReplicaCount)",
		got, rate, threshold, got, threshold, math.Ceil(got/threshold))

	// The load's creates (12 % of the mix) left a backlog for a worker that
	// does 0.2 tasks a second.
	dashboard := panelQueries(t)
	var lagExprs []string
	for _, want := range []string{"max by (consumer) (worker_queue_pending_tasks)", "max by (consumer) (worker_queue_ack_pending_tasks)"} {
		found := false
		for k, e := range dashboard {
			found = found || strings.HasPrefix(k, "worker.json") && e == want
		}
		if !found {
			t.Fatalf("the worker dashboard has no panel query %q", want)
		}
		lagExprs = append(lagExprs, want)
	}
	pending, ackPending := jetStreamLag(t, st.NATS.Addr, nats["account"], nats["stream"], nats["consumer"])
	if pending+ackPending < 50 || ackPending != 2 {
		t.Fatalf("NATS reports a lag of %d + %d unacknowledged; want a backlog of at least 50 and 2 in flight", pending, ackPending)
	}
	var shown float64
	if _, ok := poll(30*time.Second, time.Second, func() bool {
		shown = 0
		for _, e := range lagExprs {
			v, ok := promValue(t, st.Prometheus.URL(), e)
			if !ok {
				return false
			}
			shown += v
		}
		p, a := jetStreamLag(t, st.NATS.Addr, nats["account"], nats["stream"], nats["consumer"])
		pending, ackPending = p, a
		// 0.2 tasks a second, 5 s sampling plus 5 s scraping: 2 at most
		// apart, 4 to be generous.
		return math.Abs(shown-float64(p+a)) <= 4
	}); !ok {
		t.Fatalf("NATS's monitoring endpoint (KEDA's view) says %d + %d, the worker dashboard %v", pending, ackPending, shown)
	}
	lagThreshold, _ := strconv.ParseFloat(nats["lagThreshold"], 64)
	t.Logf("worker: KEDA's view of the lag, %d pending + %d unacknowledged = %d, the dashboard's %.0f; against lagThreshold %.0f the HPA asks for ceil(%d / %.0f) = %.0f worker(s)",
		pending, ackPending, pending+ackPending, shown, lagThreshold, pending+ackPending, lagThreshold, math.Ceil(float64(pending+ackPending)/lagThreshold))
}

// criLine is one line of a CRI container log file, as the kubelet writes it
// under /var/log/pods: time, stream, F (full) or P (partial), the text.
func criLine(stream, tag, text string) string {
	return time.Now().UTC().Format(time.RFC3339Nano) + " " + stream + " " + tag + " " + text + "\n"
}

// TestKubernetesCollectorReadsCRILogs: the real collector with the
// Kubernetes config (deploy/kubernetes/dependencies/otel-collector-config.yaml)
// reads a pod's CRI log files as the kubelet writes them, and sends Loki
// what compose's pipeline sends it: the service's line parsed, its resource
// named, the pod from the path; a line the runtime split, one record; a
// successful probe dropped; a crash stack one record, its lines joined by
// newlines; another program's plain line as it is.
func TestKubernetesCollectorReadsCRILogs(t *testing.T) {
	logs := t.TempDir()
	pod := filepath.Join(logs, "failready_service1-7d4b9c-x2x9q_0f0e2a52-4c1b-4d8e-9a3f-6b7c8d9e0f1a", "service1")
	if err := os.MkdirAll(pod, 0o755); err != nil {
		t.Fatal(err)
	}
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "OTELCOL_BIN"),
		Loki: devstack.LokiOptions{Addr: "127.0.0.1:0"}, ContainerLogs: logs,
		Collector: devstack.CollectorOptions{Config: "deploy/kubernetes/dependencies/otel-collector-config.yaml"}})

	access := func(id, route string, status int) string {
		return fmt.Sprintf(`{"time":"2026-11-29T15:00:00.123456789Z","level":"INFO","msg":"http request","service":"service1","version":"k8s","deployment_id":"kubernetes","request_id":"%s","method":"GET","route":"%s","path":"%s","status":%d,"duration_ms":1.5}`,
			id, route, route, status)
	}
	long := access("k8s-cri-split", "/users/{id}", 200)
	f, err := os.Create(filepath.Join(pod, "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		criLine("stdout", "F", access("k8s-cri-1", "/", 200)),
		criLine("stdout", "F", access("k8s-cri-probe", "/healthz", 200)),
		criLine("stdout", "P", long[:60]),
		criLine("stdout", "F", long[60:]),
		criLine("stderr", "F", "panic: boom"),
		criLine("stderr", "F", ""),
		criLine("stderr", "F", "goroutine 1 [running]:"),
		criLine("stderr", "F", "main.main()"),
		criLine("stderr", "F", "\t/app/main.go:10 +0x1d"),
		criLine("stdout", "F", "level=info msg=\"another program's line\""),
	} {
		if _, err := f.WriteString(l); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	find := func(match func(r lokidoor.Record) bool) (lokidoor.Record, bool) {
		for _, r := range st.Loki.Records() {
			if match(r) {
				return r, true
			}
		}
		return lokidoor.Record{}, false
	}
	byID := func(id string) func(r lokidoor.Record) bool {
		return func(r lokidoor.Record) bool { return r.Attrs["request_id"] == id }
	}
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool {
		_, a := find(byID("k8s-cri-1"))
		_, b := find(func(r lokidoor.Record) bool { return strings.Contains(r.Body, "another program") })
		_, c := find(func(r lokidoor.Record) bool { return strings.HasPrefix(r.Body, "panic: boom") })
		return a && b && c
	}); !ok {
		t.Fatalf("the pod's lines did not all reach Loki's door within 30 s: %d records", len(st.Loki.Records()))
	}
	r, _ := find(byID("k8s-cri-1"))
	for k, want := range map[string]string{"service.name": "service1", "service.version": "k8s", "deployment.environment.name": "kubernetes",
		"k8s.namespace.name": "failready", "k8s.pod.name": "service1-7d4b9c-x2x9q", "k8s.container.name": "service1"} {
		if r.Resource[k] != want {
			t.Errorf("resource %s = %q, want %q (resource %v)", k, r.Resource[k], want, r.Resource)
		}
	}
	if r.Body != "http request" || r.SeverityText != "INFO" || r.Attrs["route"] != "/" {
		t.Errorf("the access line: body %q severity %q attrs %v", r.Body, r.SeverityText, r.Attrs)
	}
	if split, ok := find(byID("k8s-cri-split")); !ok || split.Attrs["route"] != "/users/{id}" {
		t.Errorf("the line the runtime split: %v (found %v)", split, ok)
	}
	if _, ok := find(byID("k8s-cri-probe")); ok {
		t.Error("a successful probe's line reached Loki")
	}
	crash, _ := find(func(r lokidoor.Record) bool { return strings.HasPrefix(r.Body, "panic: boom") })
	if want := "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:10 +0x1d"; crash.Body != want {
		t.Errorf("the crash stack: %q, want %q", crash.Body, want)
	}
	t.Logf("%d records from the pod's CRI log file; the access line's resource: %v", len(st.Loki.Records()), r.Resource)
}
