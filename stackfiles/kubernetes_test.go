package stackfiles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/devstack"
	"github.com/failready/failready/internal/health"
)

// The static checks of deploy/kubernetes (make test, no programs): what a
// schema cannot see. make k8s-validate renders the same files with kustomize
// and has a real kube-apiserver accept every object.

// k8sObject is one object of deploy/kubernetes, as written (not rendered).
type k8sObject struct {
	file string
	doc  map[string]any
}

func (o k8sObject) kind() string { return str(o.doc["kind"]) }
func (o k8sObject) name() string { return str(get(o.doc, "metadata", "name")) }

// k8sObjects reads every object of a folder of deploy/kubernetes.
func k8sObjects(t *testing.T, folder string) []k8sObject {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/kubernetes", folder, "*.yaml"))
	var out []k8sObject
	for _, f := range files {
		if strings.HasSuffix(f, "kustomization.yaml") || strings.HasSuffix(f, "-config.yaml") || strings.HasSuffix(f, "kind.yaml") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc != nil {
				out = append(out, k8sObject{file: filepath.Base(f), doc: doc})
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no objects in deploy/kubernetes/%s", folder)
	}
	return out
}

// get walks maps (string keys) and lists (int keys).
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// workloads are the objects that run pods.
func workloads(objs []k8sObject) []k8sObject {
	return slices.DeleteFunc(slices.Clone(objs), func(o k8sObject) bool {
		return !slices.Contains([]string{"Deployment", "StatefulSet", "DaemonSet"}, o.kind())
	})
}

// envFile reads a KEY=value file of base/.
func envFile(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "deploy/kubernetes/base", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

var appPrograms = []string{"service1", "service2", "worker"}

// TestKubernetesAppSettings: each program's ConfigMap sets only variables its
// config.go reads, and the Secrets the rest; the listen port is the
// container's port and the probes' port; the grace period covers the drain
// and the shutdown.
func TestKubernetesAppSettings(t *testing.T) {
	objs := k8sObjects(t, "base")
	for _, name := range appPrograms {
		env := envFile(t, name+".env")
		vars := configVars(t, name)
		for k := range env {
			if !slices.Contains(vars, k) {
				t.Errorf("%s.env sets %s, which %s/config.go does not read", name, k, name)
			}
		}
		var d k8sObject
		for _, o := range workloads(objs) {
			if o.name() == name {
				d = o
			}
		}
		if d.doc == nil {
			t.Fatalf("no Deployment %s in base", name)
		}
		c := get(d.doc, "spec", "template", "spec", "containers", 0)
		for _, e := range list(get(c, "env")) {
			k := str(get(e, "name"))
			if !slices.Contains(vars, k) {
				t.Errorf("%s: env %s, which config.go does not read", name, k)
			}
			if _, dup := env[k]; dup {
				t.Errorf("%s: %s both in the ConfigMap and the env", name, k)
			}
		}
		port := strings.TrimPrefix(env["LISTEN_ADDR"], ":")
		if got := get(c, "ports", 0, "containerPort"); strconv.Itoa(toInt(got)) != port {
			t.Errorf("%s: containerPort %v, LISTEN_ADDR %q", name, got, env["LISTEN_ADDR"])
		}
		portName := str(get(c, "ports", 0, "name"))
		paths := map[string]string{}
		for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
			p := get(c, probe, "httpGet")
			if p == nil {
				t.Errorf("%s: no %s", name, probe)
				continue
			}
			paths[probe] = str(get(p, "path"))
			if str(get(p, "port")) != portName {
				t.Errorf("%s: %s on port %v, want %q", name, probe, get(p, "port"), portName)
			}
		}
		// Liveness is the process's own check; readiness may look at
		// dependencies (service1's deliberately does not: autoscaling.yaml).
		if paths["livenessProbe"] != health.LivePath || paths["startupProbe"] != health.LivePath {
			t.Errorf("%s: liveness and startup probes on %v, want %s", name, paths, health.LivePath)
		}
		wantReady := health.ReadyPath
		if name == "service1" {
			wantReady = health.LivePath
		}
		if paths["readinessProbe"] != wantReady {
			t.Errorf("%s: readiness probe on %s, want %s", name, paths["readinessProbe"], wantReady)
		}
		drain, _ := time.ParseDuration(orZero(env["SHUTDOWN_DRAIN"]))
		shutdown, _ := time.ParseDuration(orZero(env["SHUTDOWN_TIMEOUT"]))
		if shutdown == 0 {
			t.Errorf("%s: SHUTDOWN_TIMEOUT not set", name)
		}
		grace := time.Duration(toInt(get(d.doc, "spec", "template", "spec", "terminationGracePeriodSeconds"))) * time.Second
		if grace <= drain+shutdown {
			t.Errorf("%s: terminationGracePeriodSeconds %v must exceed SHUTDOWN_DRAIN + SHUTDOWN_TIMEOUT %v", name, grace, drain+shutdown)
		}
		if name != "worker" && drain == 0 {
			t.Errorf("%s: no SHUTDOWN_DRAIN: the endpoints have no time to catch up", name)
		}
		if get(d.doc, "spec", "replicas") != nil {
			t.Errorf("%s: replicas set: an apply would fight the autoscaler", name)
		}
	}
}

func orZero(s string) string {
	if s == "" {
		return "0s"
	}
	return s
}

func toInt(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// TestKubernetesPodsAreLockedDown: every pod runs as non-root with the
// runtime's seccomp profile, no service-account token, every container with
// no privilege escalation and no capabilities, a read-only root filesystem
// (MySQL writes its socket and pid beside its data: it alone may not), and a
// memory limit. The collector alone runs as root: it reads the node's log
// files.
func TestKubernetesPodsAreLockedDown(t *testing.T) {
	objs := append(k8sObjects(t, "base"), k8sObjects(t, "dependencies")...)
	for _, o := range workloads(objs) {
		pod := get(o.doc, "spec", "template", "spec")
		name := o.name()
		if get(pod, "automountServiceAccountToken") != false {
			t.Errorf("%s: automountServiceAccountToken is not false", name)
		}
		if str(get(pod, "securityContext", "seccompProfile", "type")) != "RuntimeDefault" {
			t.Errorf("%s: no RuntimeDefault seccomp profile", name)
		}
		if name != "otel-collector" && get(pod, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: runAsNonRoot is not true", name)
		}
		for _, c := range list(get(pod, "containers")) {
			sc := get(c, "securityContext")
			if get(sc, "allowPrivilegeEscalation") != false {
				t.Errorf("%s: allowPrivilegeEscalation is not false", name)
			}
			if !slices.Equal(list(get(sc, "capabilities", "drop")), []any{"ALL"}) {
				t.Errorf("%s: capabilities not all dropped", name)
			}
			if name != "mysql" && get(sc, "readOnlyRootFilesystem") != true {
				t.Errorf("%s: root filesystem not read-only", name)
			}
			if get(c, "resources", "limits", "memory") == nil || get(c, "resources", "requests", "cpu") == nil {
				t.Errorf("%s: no memory limit or no CPU request", name)
			}
			img := str(get(c, "image"))
			if i := strings.LastIndex(img, ":"); slices.Contains(appPrograms, name) || name == "alertlog" {
				if i >= 0 {
					t.Errorf("%s: image %q has a tag in base; the overlay sets it", name, img)
				}
			} else if i < 0 || !versionTag.MatchString(img[i+1:]) {
				t.Errorf("%s: image %q is not pinned to a version", name, img)
			}
		}
	}
}

// TestKubernetesMatchesCompose: the dependencies run the images compose runs
// (one version of each program in the project), and every program has the
// memory limit compose gives it (both come from BENCHMARKS.md's footprint).
func TestKubernetesMatchesCompose(t *testing.T) {
	p := loadCompose(t)
	objs := append(k8sObjects(t, "base"), k8sObjects(t, "dependencies")...)
	seen := 0
	for _, o := range workloads(objs) {
		s, ok := p.Services[o.name()]
		if !ok {
			t.Errorf("%s: not a compose service", o.name())
			continue
		}
		seen++
		c := get(o.doc, "spec", "template", "spec", "containers", 0)
		if s.Build == nil && str(get(c, "image")) != s.Image {
			t.Errorf("%s: image %q, compose runs %q", o.name(), get(c, "image"), s.Image)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil {
			t.Errorf("%s: no memory limit in compose", o.name())
			continue
		}
		want := int64(s.Deploy.Resources.Limits.MemoryBytes) >> 20
		if got := str(get(c, "resources", "limits", "memory")); got != strconv.FormatInt(want, 10)+"Mi" {
			t.Errorf("%s: memory limit %s, compose's %d MiB", o.name(), got, want)
		}
	}
	// Every compose service runs on Kubernetes but the ones that exist for
	// chaos and load (toxiproxy, diskfill, loadgen: kubectl and KEDA do that
	// job there).
	if want := len(p.Services) - 3; seen != want {
		t.Errorf("%d workloads match compose services, want %d", seen, want)
	}
}

// TestKubernetesGetsEveryConfigFile: the dependencies' ConfigMaps carry
// every dashboard and every rule file compose mounts as a folder.
func TestKubernetesGetsEveryConfigFile(t *testing.T) {
	k := readFile(t, "deploy/kubernetes/dependencies/kustomization.yaml")
	for _, glob := range []string{"deploy/grafana/dashboards/*.json", "deploy/prometheus/rules/*.yaml"} {
		files, _ := filepath.Glob(filepath.Join(repoRoot, glob))
		if len(files) < 2 {
			t.Fatalf("%s: %v", glob, files)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(filepath.Join(repoRoot, "deploy/kubernetes/dependencies"), f)
			if !strings.Contains(k, "- "+rel+"\n") {
				t.Errorf("deploy/kubernetes/dependencies/kustomization.yaml does not carry %s", rel)
			}
		}
	}
}

// TestKubernetesAutoscaling: one ScaledObject for each of the three, on a
// Deployment of base, no HPA of our own (KEDA makes it), CPU triggers only
// on pods with CPU requests, the Prometheus trigger on a catalog series at
// the overlay's namespace, the NATS trigger on the worker's stream and
// consumer at NATS's monitoring port; and the replica bounds fit MySQL's
// connections.
func TestKubernetesAutoscaling(t *testing.T) {
	objs := append(k8sObjects(t, "base"), k8sObjects(t, "dependencies")...)
	deployments := map[string]k8sObject{}
	for _, o := range workloads(objs) {
		deployments[o.name()] = o
	}
	overlay := readFile(t, "deploy/kubernetes/overlays/local/kustomization.yaml")
	ns := regexp.MustCompile(`(?m)^namespace: (\S+)$`).FindStringSubmatch(overlay)
	if ns == nil {
		t.Fatal("the local overlay sets no namespace")
	}
	catalog := readFile(t, "docs/metrics.md")
	scaled := map[string]int{} // max replicas
	for _, o := range objs {
		switch o.kind() {
		case "HorizontalPodAutoscaler":
			t.Errorf("%s: an HPA of our own; KEDA makes the HPA of each ScaledObject", o.name())
		case "ScaledObject":
		default:
			continue
		}
		target := str(get(o.doc, "spec", "scaleTargetRef", "name"))
		d, ok := deployments[target]
		if !ok || d.kind() != "Deployment" || d.file != target+".yaml" {
			t.Errorf("ScaledObject %s: target %q is not a Deployment of base", o.name(), target)
			continue
		}
		if _, dup := scaled[target]; dup {
			t.Errorf("%s: two ScaledObjects", target)
		}
		lo, hi := toInt(get(o.doc, "spec", "minReplicaCount")), toInt(get(o.doc, "spec", "maxReplicaCount"))
		scaled[target] = hi
		if lo < 1 || hi <= lo {
			t.Errorf("%s: replicas %d to %d", target, lo, hi)
		}
		if target != "worker" && lo < 2 {
			t.Errorf("%s: at least 2 replicas, or one pod's loss is an outage", target)
		}
		if get(o.doc, "spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown", "stabilizationWindowSeconds") == nil {
			t.Errorf("%s: no scale-down stabilization", target)
		}
		for _, tr := range list(get(o.doc, "spec", "triggers")) {
			md := get(tr, "metadata")
			switch typ := str(get(tr, "type")); typ {
			case "cpu":
				if str(get(tr, "metricType")) != "Utilization" {
					t.Errorf("%s: cpu trigger metricType %v", target, get(tr, "metricType"))
				}
				for _, c := range list(get(d.doc, "spec", "template", "spec", "containers")) {
					if get(c, "resources", "requests", "cpu") == nil {
						t.Errorf("%s: a CPU trigger, and container %v has no CPU request", target, get(c, "name"))
					}
				}
			case "prometheus":
				if want := "http://prometheus." + ns[1] + ".svc:9090"; str(get(md, "serverAddress")) != want {
					t.Errorf("%s: serverAddress %v, want %s", target, get(md, "serverAddress"), want)
				}
				q := str(get(md, "query"))
				m := regexp.MustCompile(`([a-z_]+)_count\{service="([a-z0-9]+)"\}`).FindStringSubmatch(q)
				if m == nil || m[2] != target || !strings.Contains(catalog, "`"+m[1]+"`") {
					t.Errorf("%s: query %q: want the request count of a catalog histogram for %s", target, q, target)
				}
				if str(get(tr, "metricType")) != "AverageValue" {
					t.Errorf("%s: a request-rate trigger must be AverageValue (a rate per replica)", target)
				}
			case "nats-jetstream":
				if str(get(md, "stream")) != tasks.Stream || str(get(md, "consumer")) != tasks.WelcomeConsumer(0, 0).Durable {
					t.Errorf("%s: stream %v consumer %v, want %s %s", target, get(md, "stream"), get(md, "consumer"), tasks.Stream, tasks.WelcomeConsumer(0, 0).Durable)
				}
				if want := "nats." + ns[1] + ".svc:8222"; str(get(md, "natsServerMonitoringEndpoint")) != want {
					t.Errorf("%s: monitoring endpoint %v, want %s", target, get(md, "natsServerMonitoringEndpoint"), want)
				}
				if str(get(md, "account")) != "$G" {
					t.Errorf("%s: account %v: the server has no accounts, so $G", target, get(md, "account"))
				}
			default:
				t.Errorf("%s: trigger %q", target, typ)
			}
		}
	}
	if got := slices.Sorted(maps.Keys(scaled)); !slices.Equal(got, appPrograms) {
		t.Errorf("ScaledObjects for %v, want %v", got, appPrograms)
	}
	// MySQL's max_connections (151 by default) bounds the pools.
	pool := func(name string, def int) int {
		if v := envFile(t, name+".env")["DB_MAX_OPEN_CONNS"]; v != "" {
			n, _ := strconv.Atoi(v)
			return n
		}
		return def
	}
	if conns := scaled["service2"]*pool("service2", 20) + scaled["worker"]*pool("worker", 10); conns > 151 {
		t.Errorf("at their max replicas, service2 and the workers open %d MySQL connections, over max_connections 151", conns)
	}
}

// TestKubernetesNetworkPolicies: default-deny, then each program reachable
// on its ports from exactly the programs the architecture says.
func TestKubernetesNetworkPolicies(t *testing.T) {
	objs := k8sObjects(t, "base")
	labels := map[string]bool{}
	for _, o := range append(objs, k8sObjects(t, "dependencies")...) {
		if l := str(get(o.doc, "spec", "template", "metadata", "labels", "app.kubernetes.io/name")); l != "" {
			labels[l] = true
		}
	}
	// from: who may connect, by app name ("*" anyone, "keda" KEDA's operator).
	want := map[string]map[string][]string{
		"service1":        {"8000": {"*"}},
		"service2":        {"8001": {"service1"}},
		"mysql":           {"3306": {"service2", "worker"}},
		"nats":            {"4222": {"service2", "worker"}, "8222": {"keda"}},
		"statsd-exporter": {"9125": {"service1", "service2", "worker"}, "9102": {"prometheus"}},
		"otel-collector":  {"4317": {"service1", "service2", "worker"}, "8888": {"prometheus"}},
		"jaeger":          {"4317": {"otel-collector"}, "16686": {"grafana"}},
		"loki":            {"3100": {"otel-collector", "grafana"}},
		"prometheus":      {"9090": {"grafana", "otel-collector", "keda"}},
		"alertmanager":    {"9093": {"prometheus", "grafana"}},
		"alertlog":        {"9095": {"alertmanager"}},
		"grafana":         {"3000": {"*"}},
	}
	got := map[string]map[string][]string{}
	denyAll := false
	for _, o := range objs {
		if o.kind() != "NetworkPolicy" {
			continue
		}
		spec := get(o.doc, "spec")
		app := str(get(spec, "podSelector", "matchLabels", "app.kubernetes.io/name"))
		if app == "" {
			denyAll = len(get(spec, "podSelector").(map[string]any)) == 0 && get(spec, "ingress") == nil
			continue
		}
		if !labels[app] {
			t.Errorf("policy %s selects app %q, which no pod has", o.name(), app)
		}
		got[app] = map[string][]string{}
		for _, rule := range list(get(spec, "ingress")) {
			var from []string
			for _, peer := range list(get(rule, "from")) {
				switch {
				case get(peer, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") == "keda" &&
					get(peer, "podSelector", "matchLabels", "app") == "keda-operator":
					from = append(from, "keda")
				case get(peer, "namespaceSelector") == nil:
					f := str(get(peer, "podSelector", "matchLabels", "app.kubernetes.io/name"))
					if !labels[f] {
						t.Errorf("policy %s: from app %q, which no pod has", o.name(), f)
					}
					from = append(from, f)
				default:
					t.Errorf("policy %s: a peer of another namespace: %v", o.name(), peer)
				}
			}
			if len(from) == 0 {
				from = []string{"*"}
			}
			for _, p := range list(get(rule, "ports")) {
				got[app][strconv.Itoa(toInt(get(p, "port")))] = from
			}
		}
	}
	if !denyAll {
		t.Error("no default-deny ingress policy")
	}
	for app, ports := range want {
		for port, from := range ports {
			if !slices.Equal(got[app][port], from) {
				t.Errorf("%s:%s reachable from %v, want %v", app, port, got[app][port], from)
			}
		}
		if len(got[app]) != len(ports) {
			t.Errorf("%s: ports %v open, want %v", app, slices.Sorted(maps.Keys(got[app])), slices.Sorted(maps.Keys(ports)))
		}
	}
}

// TestKubernetesCollectorConfig: the collector's Kubernetes config is
// compose's but for what reads the files: the path, the container format
// (CRI), no Docker partials to join, and the crash stacks joined with the
// newline that CRI bodies lack.
func TestKubernetesCollectorConfig(t *testing.T) {
	var compose, k8s map[string]any
	loadYAML(t, "deploy/otel-collector/config.yaml", &compose)
	loadYAML(t, "deploy/kubernetes/dependencies/otel-collector-config.yaml", &k8s)
	rc := get(compose, "receivers", "file_log/containers").(map[string]any)
	rk := get(k8s, "receivers", "file_log/containers").(map[string]any)
	ops := func(r map[string]any) []any { return list(r["operators"]) }
	oc, ok := ops(rc), ops(rk)
	// compose: container, the service's name from Docker's attrs, the attrs
	// removed, docker_partials, then the shared operators; Kubernetes:
	// container, the service's name from the container's, then the same.
	if str(get(oc, 0, "type")) != "container" || str(get(oc, 1, "id")) != "container_service" ||
		str(get(oc, 2, "id")) != "container_attrs" || str(get(oc, 3, "id")) != "docker_partials" ||
		str(get(ok, 0, "type")) != "container" || str(get(ok, 0, "format")) != "containerd" ||
		str(get(ok, 1, "id")) != "container_service" {
		t.Fatalf("the operators do not start as expected: compose %v, kubernetes %v", oc[:4], ok[:2])
	}
	if from := str(get(oc, 1, "from")); from != `attributes.attrs["`+devstack.ServiceAttr+`"]` || str(get(oc, 1, "to")) != `resource["service.name"]` {
		t.Errorf("compose names the service from %s to %s; want the json-file attribute %s", from, str(get(oc, 1, "to")), devstack.ServiceAttr)
	}
	if from := str(get(ok, 1, "from")); from != `resource["k8s.container.name"]` || str(get(ok, 1, "to")) != `resource["service.name"]` {
		t.Errorf("kubernetes names the service from %s to %s; want the container's name", from, str(get(ok, 1, "to")))
	}
	shared, kshared := oc[4:], ok[2:]
	if len(shared) != len(kshared) {
		t.Fatalf("%d operators after the container's in compose, %d in kubernetes", len(shared), len(kshared))
	}
	for i := range shared {
		a, b := shared[i].(map[string]any), kshared[i].(map[string]any)
		if str(a["id"]) == "crash_stacks" {
			if b["combine_with"] != "\n" {
				t.Errorf("kubernetes crash_stacks combine_with %q, want a newline", b["combine_with"])
			}
			a, b = maps.Clone(a), maps.Clone(b)
			delete(a, "combine_with")
			delete(b, "combine_with")
		}
		if !equalYAML(a, b) {
			t.Errorf("operator %d differs:\ncompose    %v\nkubernetes %v", i+4, a, b)
		}
	}
	if !strings.HasPrefix(str(get(rk, "include", 0)), "${env:CONTAINER_LOGS_DIR:-/var/log/pods}/failready_") {
		t.Errorf("kubernetes include %v", rk["include"])
	}
	rc, rk = maps.Clone(rc), maps.Clone(rk)
	for _, k := range []string{"operators", "include"} {
		delete(rc, k)
		delete(rk, k)
	}
	if !equalYAML(rc, rk) {
		t.Errorf("receiver settings differ:\ncompose    %v\nkubernetes %v", rc, rk)
	}
	for _, section := range []string{"extensions", "processors", "exporters", "service", "connectors"} {
		if !equalYAML(compose[section], k8s[section]) {
			t.Errorf("%s differ between deploy/otel-collector/config.yaml and the Kubernetes config", section)
		}
	}
	delete(get(compose, "receivers").(map[string]any), "file_log/containers")
	delete(get(k8s, "receivers").(map[string]any), "file_log/containers")
	if !equalYAML(compose["receivers"], k8s["receivers"]) {
		t.Error("the other receivers differ")
	}
}

func equalYAML(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}

// TestKubernetesPrometheusConfig: Prometheus on Kubernetes scrapes each
// collector pod (the collector is a DaemonSet): its config is compose's but
// for the collector's job, which finds the pods by DNS through a headless
// Service that selects the DaemonSet's pods on their metrics port. Through
// the plain Service, a scrape would reach one pod at random.
func TestKubernetesPrometheusConfig(t *testing.T) {
	var compose, k8s map[string]any
	loadYAML(t, "deploy/prometheus/prometheus.yml", &compose)
	loadYAML(t, "deploy/kubernetes/dependencies/prometheus-config.yaml", &k8s)
	job := func(cfg map[string]any, name string) (map[string]any, []any) {
		var rest []any
		var found map[string]any
		for _, j := range list(cfg["scrape_configs"]) {
			if str(get(j, "job_name")) == name {
				found = j.(map[string]any)
			} else {
				rest = append(rest, j)
			}
		}
		return found, rest
	}
	cj, crest := job(compose, "otel-collector")
	kj, krest := job(k8s, "otel-collector")
	if cj == nil || kj == nil {
		t.Fatalf("no otel-collector job: compose %v, kubernetes %v", cj, kj)
	}
	if !equalYAML(crest, krest) {
		t.Errorf("the other scrape jobs differ between deploy/prometheus/prometheus.yml and the Kubernetes config")
	}
	for _, k := range []string{"global", "rule_files", "alerting"} {
		if !equalYAML(compose[k], k8s[k]) {
			t.Errorf("%s differs between deploy/prometheus/prometheus.yml and the Kubernetes config", k)
		}
	}
	if kj["static_configs"] != nil || len(list(kj["dns_sd_configs"])) != 1 {
		t.Fatalf("kubernetes otel-collector job %v: want one dns_sd_configs and no static target", kj)
	}
	sd := get(kj, "dns_sd_configs", 0)
	names := list(get(sd, "names"))
	port := fmt.Sprint(get(sd, "port"))
	if str(get(sd, "type")) != "A" || len(names) != 1 || port != "8888" {
		t.Fatalf("dns_sd_configs %v: want type A, one name, port 8888", sd)
	}
	// The name is a headless Service selecting the collector DaemonSet's
	// pods, on the port its container serves metrics on.
	var svc, ds k8sObject
	for _, o := range k8sObjects(t, "dependencies") {
		switch {
		case o.kind() == "Service" && o.name() == str(names[0]):
			svc = o
		case o.kind() == "DaemonSet" && o.name() == "otel-collector":
			ds = o
		}
	}
	if svc.doc == nil || ds.doc == nil {
		t.Fatalf("no headless Service %v or no collector DaemonSet", names[0])
	}
	if str(get(svc.doc, "spec", "clusterIP")) != "None" {
		t.Errorf("Service %s is not headless (clusterIP: None): one address for every pod is not one per pod", svc.name())
	}
	sel := get(svc.doc, "spec", "selector").(map[string]any)
	labels := get(ds.doc, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("Service %s selects %s=%v, which the collector's pods lack (%v)", svc.name(), k, v, labels)
		}
	}
	servesPort := false
	for _, c := range list(get(ds.doc, "spec", "template", "spec", "containers")) {
		for _, p := range list(get(c, "ports")) {
			if fmt.Sprint(get(p, "containerPort")) == port {
				servesPort = true
			}
		}
	}
	if !servesPort {
		t.Errorf("the collector's pods serve no port %s", port)
	}
	if kus := readFile(t, "deploy/kubernetes/dependencies/kustomization.yaml"); !strings.Contains(kus, "prometheus.yml=prometheus-config.yaml") {
		t.Error("the prometheus ConfigMap is not made from prometheus-config.yaml")
	}
}

// TestKubernetesMetricsServer: make k8s-up installs metrics-server, which
// KEDA's cpu triggers need (without it service2 never scales, and service1
// never scales down: the HPA skips a scale-down while a metric fails), by
// a pinned release, with --kubelet-insecure-tls (kind's kubelets serve
// self-signed certificates), before the stack.
func TestKubernetesMetricsServer(t *testing.T) {
	mk := makefiles(t)
	v := regexp.MustCompile(`(?m)^METRICS_SERVER_VERSION\s*:=\s*(v\d+\.\d+\.\d+)\s*$`).FindStringSubmatch(mk)
	if v == nil {
		t.Fatal("Makefile: no pinned METRICS_SERVER_VERSION")
	}
	recipe := regexp.MustCompile(`(?s)\nk8s-up:[^\n]*\n((?:\t[^\n]*\n)+)`).FindStringSubmatch(mk)
	if recipe == nil {
		t.Fatal("Makefile: no k8s-up recipe")
	}
	steps := recipe[1]
	ms := strings.Index(steps, "$(METRICS_SERVER_RELEASE)")
	tls := strings.Index(steps, "--kubelet-insecure-tls")
	stack := strings.Index(steps, "$(KUSTOMIZE_BUILD) $(K8S_OVERLAY)")
	if ms < 0 || tls < ms || stack < tls {
		t.Errorf("k8s-up must apply $(METRICS_SERVER_RELEASE), add --kubelet-insecure-tls, then the stack:\n%s", steps)
	}
	if !strings.Contains(mk, "METRICS_SERVER_RELEASE = https://github.com/kubernetes-sigs/metrics-server/releases/download/$(METRICS_SERVER_VERSION)/components.yaml") {
		t.Error("METRICS_SERVER_RELEASE is not metrics-server's release manifest at METRICS_SERVER_VERSION")
	}
	// The autoscalers that read CPU exist, so metrics-server is needed.
	auto := readFile(t, "deploy/kubernetes/base/autoscaling.yaml")
	if !strings.Contains(auto, "type: cpu") {
		t.Error("no cpu trigger: then metrics-server is not needed, and this test should go")
	}
}
