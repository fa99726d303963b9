// Package stack runs the demo's programs as host processes on loopback: a
// MySQL-protocol server, service2 and service1, wired the way
// docker-compose.yml wires them and prepared with the same init files. It is
// the native stack runner behind `make local` and the e2e tests, for
// machines without a Docker engine.
//
// MySQL is a private mariadbd (temporary data directory, free port) when the
// binary exists, so that tests can stop and restart it; otherwise a fresh
// database on the server named by MYSQL_TEST_DSN.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options of a stack. Zero values pick free ports and a temporary directory.
type Options struct {
	RepoRoot string    // the repository, for the init files and go build
	WorkDir  string    // binaries, MySQL data; a temporary one when empty
	Log      io.Writer // every process's output, line by line; discarded when nil
	Version  string    // stamped into the binaries; "dev" when empty

	// Bins are prebuilt binaries by name (see Build); built when nil.
	Bins map[string]string

	// MySQLDSN is used when no private mariadbd can be started (root rights).
	MySQLDSN string

	Service1Addr, Service2Addr string // "127.0.0.1:0" when empty

	// Env adds variables to a service's environment, by service name.
	Env map[string][]string

	// The metrics pipeline, started when both are set: statsd_exporter with
	// statsd-exporter/mapping.yaml, and Prometheus with
	// deploy/prometheus/prometheus.yml, its targets pointed at loopback.
	StatsdExporterBin, PrometheusBin string

	// The tracing pipeline, started when OtelcolBin is set: the collector
	// built from otel-collector/builder-config.yaml with
	// otel-collector/config.yaml, its ports moved to free loopback ones and
	// its exporter pointed at TraceExportEndpoint (host:port of an OTLP gRPC
	// receiver). Without it the services run with tracing off.
	OtelcolBin, TraceExportEndpoint string

	// Chaos puts toxiproxy (in process) on both hops, as compose does.
	Chaos bool
}

// Stack is a running stack.
type Stack struct {
	opts     Options
	tempDir  string
	MariaDB  *MariaDB // nil when MySQLDSN is used
	DB       *Database
	Service1 *Process
	Service2 *Process

	// StatsdUDP is where the services send metrics ("" without the pipeline).
	StatsdUDP      string
	StatsdExporter *Process // nil without the pipeline
	Prometheus     *Process

	// OTLPEndpoint is the collector's OTLP gRPC address ("" without it).
	OTLPEndpoint     string
	Collector        *Process
	bins             map[string]string
	collectorMetrics string

	Chaos *Chaos // toxiproxy on both hops; nil unless Options.Chaos
}

// Start builds the services, starts MySQL and both services, and waits
// until both answer /readyz. On error everything started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.Log = &lockedWriter{w: o.Log}
	if o.Version == "" {
		o.Version = "dev"
	}
	s := &Stack{opts: o}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if o.WorkDir == "" {
		if s.tempDir, err = os.MkdirTemp("", "failready-stack-"); err != nil {
			return nil, err
		}
		s.opts.WorkDir = s.tempDir
	}
	s.bins = o.Bins
	if s.bins == nil {
		if s.bins, err = Build(ctx, o.RepoRoot, filepath.Join(s.opts.WorkDir, "bin"), o.Version, "service1", "service2"); err != nil {
			return nil, err
		}
	}
	if err = s.startMySQL(ctx); err != nil {
		return nil, err
	}
	if o.Chaos {
		if s.Chaos, err = startChaos(ctx); err != nil {
			return nil, err
		}
		if s.Chaos.MySQL, err = s.Chaos.proxy("mysql", s.DB.Addr); err != nil {
			return nil, err
		}
	}
	if o.OtelcolBin != "" {
		if err = s.startCollector(ctx); err != nil {
			return nil, err
		}
	}
	if o.StatsdExporterBin != "" && o.PrometheusBin != "" {
		if err = s.startMetrics(ctx); err != nil {
			return nil, err
		}
	}
	if err = s.StartService2(ctx); err != nil {
		return nil, err
	}
	if err = s.StartService1(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) startMySQL(ctx context.Context) error {
	var rootDSN, name string
	switch {
	case MariaDBAvailable():
		m, err := StartMariaDB(ctx, filepath.Join(s.opts.WorkDir, "mysql"), prefixWriter(s.opts.Log, "mariadb| "))
		if err != nil {
			return err
		}
		s.MariaDB = m
		rootDSN, name = m.RootDSN(""), "failready"
	case s.opts.MySQLDSN != "":
		rootDSN = s.opts.MySQLDSN
	default:
		return errNoMySQL
	}
	db, err := PrepareDatabase(ctx, s.opts.RepoRoot, rootDSN, name, "")
	if err != nil {
		return err
	}
	s.DB = db
	return nil
}

// startMetrics starts statsd_exporter and Prometheus on free loopback ports
// with the files compose mounts.
func (s *Stack) startMetrics(ctx context.Context) error {
	udp, err := FreeUDPPort()
	if err != nil {
		return err
	}
	web, err := FreePort()
	if err != nil {
		return err
	}
	s.StatsdUDP = fmt.Sprintf("127.0.0.1:%d", udp)
	webAddr := fmt.Sprintf("127.0.0.1:%d", web)
	s.StatsdExporter, err = StartTool(ctx, "statsd-exporter", s.opts.StatsdExporterBin, []string{
		"--statsd.mapping-config=" + filepath.Join(s.opts.RepoRoot, MappingFile),
		"--statsd.listen-udp=" + s.StatsdUDP,
		"--statsd.listen-tcp=", // UDP only here
		"--web.listen-address=" + webAddr,
	}, webAddr, "/metrics", s.opts.Log)
	if err != nil {
		return err
	}

	promPort, err := FreePort()
	if err != nil {
		return err
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", promPort)
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
	cfg := string(b)
	for from, to := range map[string]string{
		"0.0.0.0:4317":  addr(ports[0]),
		"0.0.0.0:4318":  addr(ports[1]),
		"0.0.0.0:13133": addr(ports[2]),
		"host: 0.0.0.0": "host: 127.0.0.1",
		"port: 8888":    fmt.Sprintf("port: %d", ports[3]),
	} {
		if !strings.Contains(cfg, from) {
			return fmt.Errorf("%s has no %q", CollectorConfigFile, from)
		}
		cfg = strings.ReplaceAll(cfg, from, to)
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
		export = "127.0.0.1:9" // nothing listens: the collector drops what it cannot send
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

// CollectorConfigFile is the collector config compose mounts.
const CollectorConfigFile = "otel-collector/config.yaml"

// Files of the metrics pipeline, as compose mounts them.
const (
	MappingFile          = "statsd-exporter/mapping.yaml"
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
	for from, to := range targets {
		quoted := `"` + from + `"`
		if !strings.Contains(cfg, quoted) {
			return nil, fmt.Errorf("%s has no target %s", PrometheusConfigFile, quoted)
		}
		cfg = strings.ReplaceAll(cfg, quoted, `"`+to+`"`)
	}
	return []byte(cfg), nil
}

// Service2Env is the environment service2 runs with.
func (s *Stack) Service2Env() []string {
	return append([]string{
		"LISTEN_ADDR=" + orDefault(s.opts.Service2Addr, "127.0.0.1:0"),
		"MYSQL_ADDR=" + s.mysqlAddr(),
		"MYSQL_USER=" + s.DB.User,
		"MYSQL_PASSWORD=" + s.DB.Password,
		"MYSQL_DATABASE=" + s.DB.Name,
		"DEPLOYMENT_ID=native",
		"STATSD_ADDR=" + s.statsdAddr(),
	}, append(s.tracingEnv(), s.opts.Env["service2"]...)...)
}

// StartService2 starts (or restarts) service2 and waits until it is ready.
func (s *Stack) StartService2(ctx context.Context) error {
	p, err := StartProcess(ctx, "service2", s.bins["service2"], s.Service2Env(), s.opts.Log)
	if err != nil {
		return err
	}
	s.Service2 = p
	return WaitReady(ctx, p.URL()+"/readyz", 30*time.Second)
}

// StartService1 starts (or restarts) service1 and waits until it is ready.
func (s *Stack) StartService1(ctx context.Context) error {
	service2 := s.Service2.URL()
	if s.Chaos != nil {
		if s.Chaos.Service2 == nil {
			p, err := s.Chaos.proxy("service2", s.Service2.Addr)
			if err != nil {
				return err
			}
			s.Chaos.Service2 = p
		}
		service2 = "http://" + s.Chaos.Service2.Listen
	}
	env := append([]string{
		"LISTEN_ADDR=" + orDefault(s.opts.Service1Addr, "127.0.0.1:0"),
		"SERVICE2_URL=" + service2,
		"DEPLOYMENT_ID=native",
		"STATSD_ADDR=" + s.statsdAddr(),
	}, append(s.tracingEnv(), s.opts.Env["service1"]...)...)
	p, err := StartProcess(ctx, "service1", s.bins["service1"], env, s.opts.Log)
	if err != nil {
		return err
	}
	s.Service1 = p
	return WaitReady(ctx, p.URL()+"/readyz", 30*time.Second)
}

// Stop stops the services (SIGTERM, edge first), then MySQL, and removes a
// temporary work directory. It returns the services' shutdown errors.
func (s *Stack) Stop() error {
	var errs []error
	for _, p := range []*Process{s.Service1, s.Service2} {
		if p != nil {
			errs = append(errs, p.Stop(20*time.Second))
		}
	}
	for _, p := range []*Process{s.Prometheus, s.StatsdExporter, s.Collector} {
		if p != nil {
			_ = p.Stop(20 * time.Second) // their exit codes are not ours to judge
		}
	}
	if s.Chaos != nil {
		errs = append(errs, s.Chaos.stop())
	}
	if s.DB != nil && s.MariaDB == nil {
		errs = append(errs, s.DB.Drop(context.Background()))
	}
	if s.MariaDB != nil {
		errs = append(errs, s.MariaDB.Stop())
	}
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
	return errors.Join(errs...)
}

// Build compiles the named main packages of repoRoot into dir, stamped with
// version, and returns their paths by name.
func Build(ctx context.Context, repoRoot, dir, version string, names ...string) (map[string]string, error) {
	bins := map[string]string{}
	args := []string{"build", "-trimpath", "-ldflags", "-X main.version=" + version, "-o", dir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, "./"+n)
		bins[n] = filepath.Join(dir, filepath.Base(n))
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(names, " "), err, out)
	}
	return bins, nil
}

// WaitReady polls url until it answers 200 or timeout passes.
func WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %s", url, timeout, last)
}

// mysqlAddr is where service2 finds MySQL: through toxiproxy with Chaos.
func (s *Stack) mysqlAddr() string {
	if s.Chaos != nil {
		return s.Chaos.MySQL.Listen
	}
	return s.DB.Addr
}

// tracingEnv points the services at the collector, or turns tracing off
// without one (an exporter retrying a missing collector would only slow
// every shutdown).
func (s *Stack) tracingEnv() []string {
	if s.OTLPEndpoint == "" {
		return []string{"OTEL_SDK_DISABLED=true"}
	}
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + s.OTLPEndpoint}
}

// statsdAddr is where the services send metrics: statsd_exporter, or a
// loopback port nothing listens on (the metrics are dropped, as when
// statsd-exporter is down in compose).
func (s *Stack) statsdAddr() string {
	if s.StatsdUDP != "" {
		return s.StatsdUDP
	}
	return "127.0.0.1:9" // discard
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// lockedWriter serialises writes from the processes' reader goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Restart stops both services (SIGTERM) and starts them again with env as
// their extra environment, by service name (the benchmarks switch telemetry
// on and off this way).
func (s *Stack) Restart(ctx context.Context, env map[string][]string) error {
	for _, p := range []*Process{s.Service1, s.Service2} {
		if err := p.Stop(30 * time.Second); err != nil {
			return err
		}
	}
	s.opts.Env = env
	if err := s.StartService2(ctx); err != nil {
		return err
	}
	return s.StartService1(ctx)
}
