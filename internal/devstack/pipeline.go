// The telemetry pipeline of the dev stack: statsd_exporter and Prometheus
// (metrics), the OpenTelemetry collector (traces), each started from a
// pinned binary with the very config file compose mounts, its addresses
// moved to free loopback ports (configs.go).

package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// addrOrFree is addr, or a free loopback address when addr is empty or
// asks for port 0 (the programs are waited for on their address, so it must
// be known before they start).
func addrOrFree(addr string) (string, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" {
		return addr, nil
	}
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// startMetrics starts statsd_exporter and Prometheus, on the addresses the
// options give or free loopback ports, with the files compose mounts.
func (s *Stack) startMetrics(ctx context.Context) error {
	udp, err := FreeUDPPort()
	if err != nil {
		return err
	}
	webAddr, err := addrOrFree(s.opts.StatsdExporterWebAddr)
	if err != nil {
		return err
	}
	s.StatsdUDP = fmt.Sprintf("127.0.0.1:%d", udp)
	s.StatsdExporter, err = StartTool(ctx, "statsd-exporter", s.opts.StatsdExporterBin, []string{
		"--statsd.mapping-config=" + filepath.Join(s.opts.RepoRoot, MappingFile),
		"--statsd.listen-udp=" + s.StatsdUDP,
		"--statsd.listen-tcp=", // UDP only here
		"--web.listen-address=" + webAddr,
	}, webAddr, "/metrics", s.opts.Log)
	if err != nil {
		return err
	}

	promAddr, err := addrOrFree(s.opts.PrometheusAddr)
	if err != nil {
		return err
	}
	targets := map[string]string{
		"statsd-exporter:9102": webAddr,
		"localhost:9090":       promAddr,
	}
	if s.collectorMetrics != "" {
		targets["otel-collector:8888"] = s.collectorMetrics
	}
	cfg, err := LoopbackPrometheusConfig(s.opts.RepoRoot, targets)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.opts.WorkDir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	s.Prometheus, err = StartTool(ctx, "prometheus", s.opts.PrometheusBin, []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + promAddr,
		"--log.level=warn",
	}, promAddr, "/-/ready", s.opts.Log)
	return err
}

// startCollector runs the collector with the project's config, its ports
// moved to free loopback ones.
func (s *Stack) startCollector(ctx context.Context) error {
	var ports [4]int
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	b, err := os.ReadFile(filepath.Join(s.opts.RepoRoot, CollectorConfigFile))
	if err != nil {
		return err
	}
	cfg, err := LoopbackCollectorConfig(string(b), CollectorPorts{
		OTLPGRPC: addr(ports[0]), OTLPHTTP: addr(ports[1]), Health: addr(ports[2]), Metrics: ports[3],
	})
	if err != nil {
		return err
	}
	dir := filepath.Join(s.opts.WorkDir, "otelcol")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	export := s.opts.TraceExportEndpoint
	if export == "" {
		export = discardAddr // the collector drops what it cannot send
	}
	p, err := spawn("otel-collector", s.opts.OtelcolBin, []string{"--config=" + path},
		[]string{"JAEGER_OTLP_ENDPOINT=" + export}, s.opts.Log, nil)
	if err != nil {
		return err
	}
	p.Addr = addr(ports[2])
	if err := WaitReady(ctx, p.URL()+"/", 60*time.Second); err != nil {
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("otel-collector: %w\n%s", err, strings.Join(p.Lines(), "\n"))
	}
	s.Collector = p
	s.OTLPEndpoint = addr(ports[0])
	s.collectorMetrics = addr(ports[3])
	return nil
}
