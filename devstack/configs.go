// Config rewriting: the stack runs the programs with the files compose
// mounts, changed only where a compose address (a service name, 0.0.0.0,
// a fixed port) must become a loopback one. Each rewrite fails when what it
// replaces is missing, so a changed file and the runner cannot drift apart
// unnoticed.

package devstack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CollectorConfigFile is the collector config compose mounts.
const CollectorConfigFile = "deploy/otel-collector/config.yaml"

// CollectorFeatureGates is the collector's flag in compose, in Kubernetes
// and here (a stackfiles test holds them equal). stanza.synchronousLogEmitter
// hands the lines the file_log receiver reads to the Loki exporter's queue
// on disk before the receiver saves its offsets; without it they wait in
// memory, up to 100 lines for up to 100 ms, and a killed collector loses
// them (CI: 68 of 800 lines).
const CollectorFeatureGates = "--feature-gates=stanza.synchronousLogEmitter"

// Files of the metrics pipeline, as compose mounts them.
const (
	MappingFile          = "deploy/statsd-exporter/mapping.yaml"
	PrometheusConfigFile = "deploy/prometheus/prometheus.yml"
)

// LoopbackPrometheusConfig returns the project's Prometheus config with each
// compose target replaced by its loopback address; it fails when a target
// is missing, so the file and the runner cannot drift apart unnoticed.
func LoopbackPrometheusConfig(repoRoot string, targets map[string]string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, PrometheusConfigFile))
	if err != nil {
		return nil, err
	}
	cfg := string(b)
	// The rule files are beside the project's file, not the copy's.
	const rules = "- rules/*.yaml"
	if !strings.Contains(cfg, rules) {
		return nil, fmt.Errorf("%s has no rule file %s", PrometheusConfigFile, rules)
	}
	abs, err := filepath.Abs(filepath.Join(repoRoot, filepath.Dir(PrometheusConfigFile), "rules"))
	if err != nil {
		return nil, err
	}
	cfg = strings.ReplaceAll(cfg, rules, "- "+filepath.Join(abs, "*.yaml"))
	for from, to := range targets {
		quoted := `"` + from + `"`
		if !strings.Contains(cfg, quoted) {
			return nil, fmt.Errorf("%s has no target %s", PrometheusConfigFile, quoted)
		}
		if to == "" && from == alertmanagerTarget {
			// No Alertmanager: the alerting section goes, rather than
			// a target that logs an error at each evaluation.
			var err error
			if cfg, err = dropSection(cfg, "alerting:"); err != nil {
				return nil, err
			}
			continue
		}
		cfg = strings.ReplaceAll(cfg, quoted, `"`+to+`"`)
	}
	return []byte(cfg), nil
}

// alertmanagerTarget is Alertmanager in the Prometheus config.
const alertmanagerTarget = "alertmanager:9093"

// dropSection removes the top-level YAML section key (and the comment
// lines just above it) from cfg, up to the next top-level line.
func dropSection(cfg, key string) (string, error) {
	lines := strings.SplitAfter(cfg, "\n")
	start := -1
	for i, l := range lines {
		if l == key+"\n" {
			start = i
			break
		}
	}
	if start < 0 {
		return "", fmt.Errorf("%s has no section %s", PrometheusConfigFile, key)
	}
	end := start + 1
	for end < len(lines) && (strings.HasPrefix(lines[end], " ") || strings.TrimSpace(lines[end]) == "") {
		end++
	}
	for start > 0 && strings.HasPrefix(lines[start-1], "#") {
		start--
	}
	return strings.Join(lines[:start], "") + strings.Join(lines[end:], ""), nil
}

// AlertmanagerConfigFile is the Alertmanager config compose mounts; its
// receivers' webhook address is alertlogURL.
const (
	AlertmanagerConfigFile = "deploy/alertmanager/alertmanager.yml"
	alertlogURL            = "http://alertlog:9095/"
)

// LoopbackAlertmanagerConfig returns the Alertmanager config src (the file
// compose mounts) with its webhooks pointed at alertlog on addr.
func LoopbackAlertmanagerConfig(src, alertlogAddr string) (string, error) {
	return replaceAll(AlertmanagerConfigFile, src, [][2]string{{alertlogURL, "http://" + alertlogAddr + "/"}})
}

// JaegerConfigFile is the Jaeger config compose mounts.
const JaegerConfigFile = "deploy/jaeger/config.yaml"

// JaegerPorts are the loopback addresses Jaeger listens on in the dev stack.
type JaegerPorts struct {
	OTLPGRPC, QueryHTTP, QueryGRPC, Health string // host:port
}

// LoopbackJaegerConfig returns the Jaeger config src (the file compose
// mounts) with its listeners moved to p.
func LoopbackJaegerConfig(src string, p JaegerPorts) (string, error) {
	return replaceAll(JaegerConfigFile, src, [][2]string{
		{"0.0.0.0:4317", p.OTLPGRPC},
		{"0.0.0.0:16686", p.QueryHTTP},
		{"0.0.0.0:16685", p.QueryGRPC},
		{"0.0.0.0:13133", p.Health},
	})
}

// replaceAll makes each replacement in src, the text of file, and fails
// when one has nothing to replace.
func replaceAll(file, src string, rs [][2]string) (string, error) {
	for _, r := range rs {
		if !strings.Contains(src, r[0]) {
			return "", fmt.Errorf("%s has no %q", file, r[0])
		}
		src = strings.ReplaceAll(src, r[0], r[1])
	}
	return src, nil
}

// CollectorPorts are the loopback addresses the collector listens on in the
// dev stack.
type CollectorPorts struct {
	OTLPGRPC, OTLPHTTP, Health string // host:port
	Metrics                    int    // its own metrics (Prometheus scrapes them)
}

// LoopbackCollectorConfig returns the collector config src (the file compose
// mounts) with its listeners moved to p.
func LoopbackCollectorConfig(src string, p CollectorPorts) (string, error) {
	return replaceAll(CollectorConfigFile, src, [][2]string{
		{"0.0.0.0:4317", p.OTLPGRPC},
		{"0.0.0.0:4318", p.OTLPHTTP},
		{"0.0.0.0:13133", p.Health},
		{"host: 0.0.0.0", "host: 127.0.0.1"},
		{"port: 8888", fmt.Sprintf("port: %d", p.Metrics)},
	})
}
