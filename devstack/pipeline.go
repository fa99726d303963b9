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

// udpAddrOrFree is addr, or a free loopback UDP address when addr is empty
// or asks for port 0.
func udpAddrOrFree(addr string) (string, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" {
		return addr, nil
	}
	p, err := FreeUDPPort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// startMetrics starts statsd_exporter and Prometheus, on the addresses the
// options give or free loopback ports, with the files compose mounts.
func (s *Stack) startMetrics(ctx context.Context) error {
	udp, err := udpAddrOrFree(s.opts.Metrics.StatsdUDPAddr)
	if err != nil {
		return err
	}
	webAddr, err := addrOrFree(s.opts.Metrics.ExporterWebAddr)
	if err != nil {
		return err
	}
	s.StatsdUDP = udp
	exporter, err := StartTool(ctx, "statsd-exporter", s.opts.StatsdExporterBin, []string{
		"--statsd.mapping-config=" + filepath.Join(s.opts.RepoRoot, MappingFile),
		"--statsd.listen-udp=" + s.StatsdUDP,
		"--statsd.listen-tcp=", // UDP only here
		"--web.listen-address=" + webAddr,
	}, webAddr, "/metrics", s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.StatsdExporter = exporter
	s.mu.Unlock()

	promAddr, err := addrOrFree(s.opts.Metrics.PrometheusAddr)
	if err != nil {
		return err
	}
	targets := map[string]string{
		"statsd-exporter:9102": webAddr,
		"localhost:9090":       promAddr,
		"alertmanager:9093":    "", // no alerting section without Alertmanager
	}
	if s.collectorMetrics != "" {
		targets["otel-collector:8888"] = s.collectorMetrics
	}
	if s.opts.AlertmanagerBin != "" {
		if err := s.startAlerting(ctx); err != nil {
			return err
		}
		targets["alertmanager:9093"] = s.Alertmanager.Addr
	}
	cfg, err := LoopbackPrometheusConfig(s.opts.RepoRoot, targets)
	if err != nil {
		return err
	}
	dir, cfgPath, err := s.writeConfig("prometheus", "prometheus.yml", cfg)
	if err != nil {
		return err
	}
	prom, err := StartTool(ctx, "prometheus", s.opts.PrometheusBin, append([]string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + promAddr,
		"--log.level=warn",
	}, PrometheusFlags...), promAddr, "/-/ready", s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.Prometheus = prom
	s.mu.Unlock()
	return nil
}

// PrometheusFlags are the flags compose's Prometheus has beyond its config,
// storage and address (a test holds them equal): the OTLP receiver the
// collector sends the histograms to, and exemplar storage, for their
// exemplars.
var PrometheusFlags = []string{"--web.enable-otlp-receiver", "--enable-feature=exemplar-storage"}

// writeConfig writes a program's config file (compose's, moved to
// loopback) to its folder of the work directory; it returns both.
func (s *Stack) writeConfig(program, file string, cfg []byte) (dir, path string, err error) {
	dir = filepath.Join(s.opts.WorkDir, program)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, file)
	return dir, path, os.WriteFile(path, cfg, 0o644)
}

// startCollector runs the collector with the project's config, its ports
// moved to loopback ones.
func (s *Stack) startCollector(ctx context.Context) error {
	var ports CollectorPorts
	var err error
	if ports.OTLPGRPC, err = addrOrFree(s.opts.Collector.GRPCAddr); err != nil {
		return err
	}
	if ports.OTLPHTTP, err = addrOrFree(s.opts.Collector.HTTPAddr); err != nil {
		return err
	}
	if ports.Health, err = addrOrFree(""); err != nil {
		return err
	}
	if ports.Metrics, err = FreePort(); err != nil {
		return err
	}
	export := s.opts.Collector.TraceExportEndpoint
	if export == "" && s.Jaeger != nil {
		export = s.jaegerOTLP
	}
	if export == "" {
		export = discardAddr // the collector drops what it cannot send
	}
	// The logs: the containers' json-file logs, when the stack keeps them
	// (an empty folder otherwise, never the host's Docker logs), to
	// LogsExportEndpoint (the stand-in for Loki when it runs, nowhere
	// otherwise); offsets and queue in the work
	// directory.
	containers := s.opts.ContainerLogs
	if containers == "" {
		containers = filepath.Join(s.opts.WorkDir, "otel-collector", "no-containers")
	}
	if err := os.MkdirAll(containers, 0o755); err != nil {
		return err
	}
	logsTo := s.opts.Collector.LogsExportEndpoint
	switch {
	case logsTo != "":
	case s.Loki != nil:
		logsTo = s.Loki.URL() + "/otlp"
	default:
		logsTo = "http://" + discardAddr
	}
	// The histograms with exemplars: to Prometheus when it runs.
	metricsTo := "http://" + discardAddr
	if s.opts.PrometheusBin != "" && s.opts.Metrics.PrometheusAddr != "" {
		metricsTo = "http://" + s.opts.Metrics.PrometheusAddr + "/api/v1/otlp"
	}
	config := s.opts.Collector.Config
	if config == "" {
		config = CollectorConfigFile
	}
	flags := []string{CollectorFeatureGates}
	env := []string{"JAEGER_OTLP_ENDPOINT=" + export, "CONTAINER_LOGS_DIR=" + containers, "LOKI_OTLP_ENDPOINT=" + logsTo,
		"PROMETHEUS_OTLP_ENDPOINT=" + metricsTo,
		"COLLECTOR_STORAGE_DIR=" + filepath.Join(s.opts.WorkDir, "otel-collector", "storage")}
	if v := s.opts.Collector.VendorEndpoint; v != "" { // the vendor overlay has no ports to move
		flags = append(flags, "--config="+filepath.Join(s.opts.RepoRoot, VendorConfigFile))
		env = append(env, "VENDOR_OTLP_ENDPOINT="+v)
		if h := s.opts.Collector.VendorHeaders; h != "" {
			env = append(env, "VENDOR_OTLP_HEADERS="+h)
		}
	}
	p, err := s.startOtelStyle(ctx, "otel-collector", s.opts.OtelcolBin, config, flags,
		func(src string) (string, error) { return LoopbackCollectorConfig(src, ports) }, env, ports.Health, "/")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Collector = p
	s.OTLPEndpoint = ports.OTLPGRPC
	s.OTLPHTTPEndpoint = ports.OTLPHTTP
	s.collectorMetrics = fmt.Sprintf("127.0.0.1:%d", ports.Metrics)
	return nil
}

// startJaeger runs Jaeger with deploy/jaeger/config.yaml, its ports moved
// to loopback ones, and waits until its query API answers.
func (s *Stack) startJaeger(ctx context.Context) error {
	var ports JaegerPorts
	var err error
	if ports.QueryHTTP, err = addrOrFree(s.opts.Jaeger.QueryAddr); err != nil {
		return err
	}
	for _, a := range []*string{&ports.OTLPGRPC, &ports.QueryGRPC, &ports.Health} {
		if *a, err = addrOrFree(""); err != nil {
			return err
		}
	}
	p, err := s.startOtelStyle(ctx, "jaeger", s.opts.JaegerBin, JaegerConfigFile, nil,
		func(src string) (string, error) { return LoopbackJaegerConfig(src, ports) },
		nil, ports.QueryHTTP, "/api/services")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Jaeger = p
	s.jaegerOTLP = ports.OTLPGRPC
	return nil
}

// startOtelStyle runs a collector-style program (the collector, Jaeger v2):
// the config file compose mounts, rewritten by loopback, written to the
// work directory and passed as --config, then flags; ready when
// http://addr+readyPath answers 200.
func (s *Stack) startOtelStyle(ctx context.Context, name, bin, configFile string, flags []string, loopback func(string) (string, error),
	env []string, addr, readyPath string) (*Process, error) {
	b, err := os.ReadFile(filepath.Join(s.opts.RepoRoot, configFile))
	if err != nil {
		return nil, err
	}
	cfg, err := loopback(string(b))
	if err != nil {
		return nil, err
	}
	_, path, err := s.writeConfig(name, "config.yaml", []byte(cfg))
	if err != nil {
		return nil, err
	}
	var start func(context.Context) (*Process, error)
	start = func(ctx context.Context) (*Process, error) {
		p, err := spawn(name, bin, append([]string{"--config=" + path}, flags...), env, s.output(), nil)
		if err != nil {
			return nil, err
		}
		p.Addr = addr
		if err := WaitReady(ctx, p.URL()+readyPath, 60*time.Second); err != nil {
			_ = p.cmd.Process.Kill()
			<-p.done
			return nil, fmt.Errorf("%s: %w\n%s", name, err, strings.Join(p.Lines(), "\n"))
		}
		p.restart = start
		return p, nil
	}
	return start(ctx)
}
