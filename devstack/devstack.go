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

// Options of a stack. Zero values pick free ports and a temporary directory.
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

	// MySQLDSN is used when no private mariadbd can be started (root rights).
	MySQLDSN string

	Service1Addr, Service2Addr string // "127.0.0.1:0" when empty
	// StatsdExporterWebAddr and PrometheusAddr are where statsd_exporter's
	// metrics page and Prometheus listen, StatsdUDPAddr where it takes the
	// services' metrics; empty or port 0: a free port.
	StatsdExporterWebAddr, PrometheusAddr, StatsdUDPAddr string

	// Env adds variables to a service's environment, by service name.
	Env map[string][]string

	// The metrics pipeline, started when both are set: statsd_exporter with
	// deploy/statsd-exporter/mapping.yaml, and Prometheus with
	// deploy/prometheus/prometheus.yml, its targets pointed at loopback.
	StatsdExporterBin, PrometheusBin string

	// Alerting, started with the metrics pipeline when AlertmanagerBin is
	// set: alertlog (cmd/alertlog, the webhook receiver) on AlertLogAddr,
	// then Alertmanager with deploy/alertmanager/alertmanager.yml on
	// AlertmanagerAddr (empty or port 0: free ports), which Prometheus then
	// sends its alerts to. Without it Prometheus evaluates the rules and
	// sends nowhere.
	AlertmanagerBin, AlertmanagerAddr, AlertLogAddr string

	// The tracing pipeline, started when OtelcolBin is set: the collector
	// built from deploy/otel-collector/builder-config.yaml with
	// deploy/otel-collector/config.yaml, its ports moved to free loopback ones and
	// its exporter pointed at TraceExportEndpoint (host:port of an OTLP gRPC
	// receiver). Without it the services run with tracing off.
	OtelcolBin, TraceExportEndpoint string
	// LogsExportEndpoint is where the collector sends the logs it reads
	// from ContainerLogs, as to Loki (a base URL: /v1/logs is appended).
	LogsExportEndpoint string
	// CollectorConfig is the collector's config file, relative to
	// RepoRoot: CollectorConfigFile (compose's) when empty.
	CollectorConfig string
	// CollectorGRPCAddr and CollectorHTTPAddr are where the collector's OTLP
	// receivers listen (empty or port 0: a free port).
	CollectorGRPCAddr, CollectorHTTPAddr string

	// Jaeger, started when JaegerBin is set, before the collector, which
	// then exports to it (unless TraceExportEndpoint says otherwise): the
	// binary built from Jaeger's module, with deploy/jaeger/config.yaml
	// (in-memory storage), its query API on JaegerQueryAddr (empty or port
	// 0: a free port).
	JaegerBin, JaegerQueryAddr string

	// TelemetryLater starts the services pointed at StatsdUDPAddr and
	// CollectorGRPCAddr (both must be set) before anything listens there:
	// StartTelemetry starts the pipeline once its programs are built, and
	// what the services send meanwhile is lost, as with a telemetry
	// pipeline that is down.
	TelemetryLater bool

	// Chaos puts toxiproxy (in process) on both hops, as compose does, its
	// API on ChaosAddr (empty or port 0: a free port).
	Chaos     bool
	ChaosAddr string

	// NATSBin, when set, runs a private nats-server with JetStream (its
	// store in WorkDir) on NATSAddr, its monitoring on NATSMonitorAddr
	// (empty or port 0: free ports); service2's outbox relay publishes to
	// it and Workers workers (1 when 0) consume from it. Without it
	// service2 runs with NATS_URL=off and there is no worker, unless
	// TelemetryLater and NATSAddr are set: then service2 is told that
	// address, and StartTelemetry starts NATS and the workers.
	NATSBin, NATSAddr, NATSMonitorAddr string
	Workers                            int

	// LokiAddr, when set (port 0: a free one), serves a stand-in for Loki
	// there, in process (lokidoor: Loki's OTLP push and its log-query API,
	// with the index labels of deploy/loki/config.yaml). The collector
	// sends it the logs (unless LogsExportEndpoint says otherwise), read
	// from ContainerLogs (a folder in WorkDir when empty).
	LokiAddr string
}

// Stack is a running stack.
type Stack struct {
	// mu guards the process fields (and MariaDB's restarts) while
	// Supervise runs.
	mu       sync.Mutex
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

	Chaos *Chaos           // toxiproxy on both hops; nil unless Options.Chaos
	Loki  *lokidoor.Server // the stand-in for Loki; nil unless Options.LokiAddr
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
	if o.Chaos {
		if s.Chaos, err = startChaos(ctx, o.ChaosAddr); err != nil {
			return nil, err
		}
		if s.Chaos.MySQL, err = s.Chaos.proxy("mysql", s.DB.Addr); err != nil {
			return nil, err
		}
	}
	if o.LokiAddr != "" {
		if err = s.startLoki(); err != nil {
			return nil, err
		}
	}
	if o.NATSBin != "" || (o.TelemetryLater && o.NATSAddr != "") {
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
		if s.opts.StatsdUDPAddr, err = udpAddrOrFree(o.StatsdUDPAddr); err != nil {
			return nil, err
		}
		if s.opts.CollectorGRPCAddr, err = addrOrFree(o.CollectorGRPCAddr); err != nil {
			return nil, err
		}
		s.StatsdUDP, s.OTLPEndpoint = s.opts.StatsdUDPAddr, s.opts.CollectorGRPCAddr
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
	s.opts.StatsdExporterBin, s.opts.PrometheusBin, s.opts.OtelcolBin, s.opts.JaegerBin, s.opts.NATSBin, s.opts.AlertmanagerBin =
		t.StatsdExporterBin, t.PrometheusBin, t.OtelcolBin, t.JaegerBin, t.NATSBin, t.AlertmanagerBin
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
