// Package devstack is the development stack, not a pattern: it runs the
// demo's programs as host processes on loopback (a MySQL-protocol server,
// service2 and service1, and, when asked, the telemetry pipeline and
// toxiproxy), wired the way docker-compose.yml wires them and prepared with
// the same init and config files. It is the native stack runner behind
// `make local` and the e2e tests, for machines without a Docker engine.
//
// By concern: devstack.go (start and stop the whole), services.go (the
// services and their environment), pipeline.go (statsd_exporter,
// Prometheus, the collector, Jaeger), configs.go (the compose files moved
// to loopback), mariadb.go and schema.go (MySQL), alerting.go
// (Alertmanager and its webhook receiver), chaos.go (toxiproxy),
// nats.go (NATS and the workers), loki.go (the stand-in for Loki), process.go (running and watching a
// program), supervise.go (restarts), jsonfile.go (Docker's json-file log
// format), build.go (go build). Test
// helpers that need the testing package are in devstacktest, so that
// cmd/local does not link it.
//
// Depends on: github.com/Shopify/toxiproxy/v2 (in process, for chaos),
// github.com/rs/zerolog (to quiet toxiproxy's logger),
// github.com/go-sql-driver/mysql, internal/health (the probe paths); the
// programs themselves as binaries (mariadbd, statsd_exporter, Prometheus,
// the collector), installed by the Makefile; devstack/lokidoor
// (the stand-in for Loki, in process).
//
// MySQL is a private mariadbd (temporary data directory, free port) when the
// binary exists, so that tests can stop and restart it; otherwise a fresh
// database on the server named by MYSQL_TEST_DSN.
package devstack

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/failready/failready/devstack/lokidoor"
)

// Options of a stack, by component. Zero values pick free ports and a
// temporary directory. The embedded Telemetry names the pinned tools'
// binaries: a component whose binary is set is started, one whose binary
// is empty is not (and the services run without it).
type Options struct {
	RepoRoot string    // the repository, for the init files and go build
	WorkDir  string    // binaries, MySQL data; a temporary one when empty
	Log      io.Writer // every process's output, line by line; discarded when nil
	Version  string    // stamped into the binaries; "dev" when empty
	// ContainerLogs, when set, is a folder where every process's stdout and
	// stderr are also kept as Docker's json-file driver keeps a
	// container's: NAME/NAME-json.log.
	ContainerLogs string

	// Bins are prebuilt binaries by name (see Build); built when nil.
	Bins map[string]string
	// Env adds variables to a service's environment, by service name.
	Env map[string][]string

	Telemetry

	// TelemetryLater starts the services pointed at Metrics.StatsdUDPAddr
	// and Collector.GRPCAddr (both must be set) before anything listens
	// there: StartTelemetry starts the pipeline once its programs are
	// built, and what the services send meanwhile is lost, as with a
	// telemetry pipeline that is down. With NATS.Addr set, service2 is told
	// that address too, and StartTelemetry starts NATS and the workers.
	TelemetryLater bool

	Services  ServicesOptions
	MySQL     MySQLOptions
	Metrics   MetricsOptions
	Alerting  AlertingOptions
	Collector CollectorOptions
	Jaeger    JaegerOptions
	NATS      NATSOptions
	Loki      LokiOptions
	Chaos     ChaosOptions
}

// ServicesOptions: where service1 and service2 listen ("127.0.0.1:0" when
// empty).
type ServicesOptions struct {
	Service1Addr, Service2Addr string
}

// MySQLOptions: DSN is used when no private mariadbd can be started (root
// rights).
type MySQLOptions struct {
	DSN string
}

// MetricsOptions: the metrics pipeline, started when StatsdExporterBin and
// PrometheusBin are both set: statsd_exporter with
// deploy/statsd-exporter/mapping.yaml, its metrics page on ExporterWebAddr
// and the services' metrics taken on StatsdUDPAddr, and Prometheus with
// deploy/prometheus/prometheus.yml on PrometheusAddr, its targets pointed
// at loopback. Empty or port 0: a free port.
type MetricsOptions struct {
	ExporterWebAddr, StatsdUDPAddr, PrometheusAddr string
}

// AlertingOptions: started with the metrics pipeline when AlertmanagerBin
// is set: alertlog (cmd/alertlog, the webhook receiver) on AlertLogAddr,
// then Alertmanager with deploy/alertmanager/alertmanager.yml on
// AlertmanagerAddr (empty or port 0: free ports), which Prometheus then
// sends its alerts to. Without it Prometheus evaluates the rules and sends
// nowhere.
type AlertingOptions struct {
	AlertmanagerAddr, AlertLogAddr string
}

// CollectorOptions: the tracing pipeline, started when OtelcolBin is set:
// the collector built from deploy/otel-collector/builder-config.yaml. Without
// it the services run with tracing off.
type CollectorOptions struct {
	// Config is the collector's config file, relative to RepoRoot:
	// CollectorConfigFile (compose's) when empty. Its ports are moved to
	// free loopback ones.
	Config string
	// GRPCAddr and HTTPAddr are where its OTLP receivers listen (empty or
	// port 0: a free port).
	GRPCAddr, HTTPAddr string
	// TraceExportEndpoint is where it sends traces (host:port of an OTLP
	// gRPC receiver): Jaeger's when empty.
	TraceExportEndpoint string
	// LogsExportEndpoint is where it sends the logs it reads from
	// ContainerLogs, as to Loki (a base URL: /v1/logs is appended): the
	// Loki stand-in's when empty.
	LogsExportEndpoint string
	// VendorEndpoint, when set, fans the traces and the logs out to a
	// vendor's OTLP/HTTP endpoint too (a base URL), with VendorHeaders (a
	// YAML or JSON map), as VENDOR_OTLP_ENDPOINT does on compose: the
	// collector runs with VendorConfigFile merged over its config.
	VendorEndpoint, VendorHeaders string
}

// VendorConfigFile is the collector's vendor fan-out, merged over
// CollectorConfigFile when a vendor endpoint is set (relative to the
// repository).
const VendorConfigFile = "deploy/otel-collector/vendor.yaml"

// JaegerOptions: Jaeger, started when JaegerBin is set, before the
// collector, which then exports to it: the binary built from Jaeger's
// module, with deploy/jaeger/config.yaml (in-memory storage), its query
// API on QueryAddr (empty or port 0: a free port).
type JaegerOptions struct {
	QueryAddr string
}

// NATSOptions: when NATSBin is set, a private nats-server with JetStream
// (its store in WorkDir) on Addr, its monitoring on MonitorAddr (empty or
// port 0: free ports); service2's outbox relay publishes to it and Workers
// workers (1 when 0) consume from it. Without it service2 runs with
// NATS_URL=off and there is no worker (but see TelemetryLater).
type NATSOptions struct {
	Addr, MonitorAddr string
	Workers           int
}

// LokiOptions: when Addr is set (port 0: a free one), a stand-in for Loki
// serves there, in process (lokidoor: Loki's OTLP push and its log-query
// API, with the index labels of deploy/loki/config.yaml). The collector
// sends it the logs (unless Collector.LogsExportEndpoint says otherwise),
// read from ContainerLogs (a folder in WorkDir when empty).
type LokiOptions struct {
	Addr string
}

// ChaosOptions: Enabled puts toxiproxy (in process) on both hops, as
// compose does, its API on Addr (empty or port 0: a free port).
type ChaosOptions struct {
	Enabled bool
	Addr    string
}

// Stack is a running stack.
type Stack struct {
	// mu guards the process fields (and MariaDB's restarts) while
	// Supervise runs.
	mu       sync.Mutex
	opts     Options
	tempDir  string
	MariaDB  *MariaDB // nil when MySQL.DSN is used
	DB       *Database
	Service1 *Process
	Service2 *Process

	// StatsdUDP is where the services send metrics ("" without the pipeline).
	StatsdUDP      string
	StatsdExporter *Process // nil without the pipeline
	Prometheus     *Process
	// Alertmanager's API is at Alertmanager.URL(), alertlog's list of
	// notifications at AlertLog.URL()+"/alerts" (nil without
	// AlertmanagerBin).
	Alertmanager, AlertLog *Process

	// OTLPEndpoint is the collector's OTLP gRPC address ("" without it).
	OTLPEndpoint     string
	OTLPHTTPEndpoint string // the collector's OTLP HTTP receiver
	Collector        *Process
	// Jaeger's query API is at Jaeger.URL() (nil without JaegerBin).
	Jaeger           *Process
	bins             map[string]string
	collectorMetrics string
	jaegerOTLP       string

	// NATS is the nats-server (nil without NATSBin), at NATSURL; its
	// monitoring endpoint is at NATS.URL().
	NATS          *Process
	NATSURL       string     // service2's (through toxiproxy with chaos)
	workerNATSURL string     // the workers' (their own proxy with chaos)
	Workers       []*Process // worker, worker-2, ...

	Chaos *Chaos           // toxiproxy on both hops; nil unless Options.Chaos.Enabled
	Loki  *lokidoor.Server // the stand-in for Loki; nil unless Options.Loki.Addr
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
		if s.bins, err = Build(ctx, o.RepoRoot, filepath.Join(s.opts.WorkDir, "bin"), o.Version, "service1", "service2", "worker"); err != nil {
			return nil, err
		}
	}
	if err = s.startMySQL(ctx); err != nil {
		return nil, err
	}
	if o.Chaos.Enabled {
		if s.Chaos, err = startChaos(ctx, o.Chaos.Addr); err != nil {
			return nil, err
		}
		if s.Chaos.MySQL, err = s.Chaos.proxy("mysql", s.DB.Addr); err != nil {
			return nil, err
		}
	}
	if o.Loki.Addr != "" {
		if err = s.startLoki(); err != nil {
			return nil, err
		}
	}
	if o.NATSBin != "" || (o.TelemetryLater && o.NATS.Addr != "") {
		if err = s.prepareNATS(); err != nil {
			return nil, err
		}
		if o.NATSBin != "" && !o.TelemetryLater {
			if err = s.startNATS(ctx); err != nil {
				return nil, err
			}
		}
	}
	if o.TelemetryLater {
		// The addresses must be known now: the services are told them.
		if s.opts.Metrics.StatsdUDPAddr, err = udpAddrOrFree(o.Metrics.StatsdUDPAddr); err != nil {
			return nil, err
		}
		if s.opts.Collector.GRPCAddr, err = addrOrFree(o.Collector.GRPCAddr); err != nil {
			return nil, err
		}
		s.StatsdUDP, s.OTLPEndpoint = s.opts.Metrics.StatsdUDPAddr, s.opts.Collector.GRPCAddr
	} else if err = s.startTelemetry(ctx); err != nil {
		return nil, err
	}
	for _, name := range startOrder() {
		if err = s.StartService(ctx, name); err != nil {
			return nil, err
		}
	}
	if s.NATS != nil {
		if err = s.startWorkers(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Telemetry names the programs of the telemetry pipeline, and NATS (built
// with them on a first make local), as Options has them; an empty one is
// not started.
type Telemetry struct {
	StatsdExporterBin, PrometheusBin, OtelcolBin, JaegerBin, NATSBin, AlertmanagerBin string
}

// StartTelemetry starts the pipeline of a stack started with
// TelemetryLater, where the services already send their metrics and spans.
// Call it before Supervise, or restart Supervise after it.
func (s *Stack) StartTelemetry(ctx context.Context, t Telemetry) error {
	s.mu.Lock()
	s.opts.Telemetry = t
	s.mu.Unlock()
	if t.NATSBin != "" && s.NATSURL != "" && s.NATS == nil {
		// The services were told where NATS would be: their tasks waited.
		if err := s.startNATS(ctx); err != nil {
			return err
		}
		if err := s.startWorkers(ctx); err != nil {
			return err
		}
	}
	return s.startTelemetry(ctx)
}

// startTelemetry starts Jaeger, the collector that exports to it, then
// statsd_exporter and Prometheus (which scrapes the collector too), each
// when its binary is set.
func (s *Stack) startTelemetry(ctx context.Context) error {
	o := s.opts
	if o.JaegerBin != "" {
		if err := s.startJaeger(ctx); err != nil {
			return err
		}
	}
	if o.PrometheusBin != "" && o.Metrics.PrometheusAddr == "" {
		// Chosen now: the collector, which starts first, sends the
		// histograms with exemplars to it.
		addr, err := addrOrFree("")
		if err != nil {
			return err
		}
		s.opts.Metrics.PrometheusAddr = addr
	}
	if o.OtelcolBin != "" {
		if err := s.startCollector(ctx); err != nil {
			return err
		}
	}
	if o.StatsdExporterBin != "" && o.PrometheusBin != "" {
		if err := s.startMetrics(ctx); err != nil {
			return err
		}
	}
	return nil
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
	case s.opts.MySQL.DSN != "":
		rootDSN = s.opts.MySQL.DSN
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

// Stop stops the services (SIGTERM, edge first), then MySQL, and removes a
// temporary work directory. It returns the services' shutdown errors.
func (s *Stack) Stop() error {
	var errs []error
	for _, p := range append([]*Process{s.Service1, s.Service2}, s.Workers...) {
		if p != nil {
			errs = append(errs, p.Stop(20*time.Second))
		}
	}
	for _, p := range []*Process{s.NATS, s.Prometheus, s.Alertmanager, s.AlertLog, s.StatsdExporter, s.Collector, s.Jaeger} {
		if p != nil {
			_ = p.Stop(20 * time.Second) // their exit codes are not ours to judge
		}
	}
	if s.Chaos != nil {
		errs = append(errs, s.Chaos.stop())
	}
	if s.Loki != nil {
		errs = append(errs, s.Loki.Close())
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

// output is where the stack's processes write.
func (s *Stack) output() Output { return Output{Log: s.opts.Log, ContainerLogs: s.opts.ContainerLogs} }

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
	for _, name := range startOrder() {
		if err := s.StartService(ctx, name); err != nil {
			return err
		}
	}
	return nil
}
