// Command local runs the demo stack without Docker: MySQL (a private
// mariadbd, or MYSQL_TEST_DSN), service2 and service1 as host processes on
// loopback, wired as docker-compose.yml wires them (toxiproxy on both hops),
// plus statsd_exporter and Prometheus when STATSD_EXPORTER_BIN and
// PROMETHEUS_BIN name them, and the collector and Jaeger when OTELCOL_BIN
// and JAEGER_BIN do (make local installs and sets all four), on compose's
// host ports. It prints the URLs, streams every process's log lines (and
// keeps them in .cache/local/logs for make logs), restarts a program that
// dies, as compose's restart policy does, and tears everything down on
// SIGINT (Ctrl-C), SIGTERM or SIGHUP, exiting 0. See state.go for what it
// keeps in .cache/local.
//
//	make local
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/failready/failready/devstack"
)

func main() {
	// A reader of our output that goes away (a closed pipe, a terminal gone)
	// must not kill the runner before it has stopped everything: writes to
	// it fail instead.
	signal.Ignore(syscall.SIGPIPE)
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// localFlags are make local's flags: where each program listens (compose's
// host ports), then the rest.
type localFlags struct {
	service1, service2, toxiproxy, loki           string
	statsdExporter, statsdUDP, prometheus         string
	alertmanager, alertlog                        string
	jaeger, otlpGRPC, otlpHTTP, nats, natsMonitor string

	stateDir string
	quiet    bool
}

// newFlags defines make local's flags on a new flag set.
func newFlags() (*flag.FlagSet, *localFlags) {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	f := &localFlags{}
	// The compose stack's host ports, so that the walkthroughs' commands
	// work unchanged on either stack; port 0 picks a free one.
	fs.StringVar(&f.service1, "service1", "127.0.0.1:8000", "service1 listen address")
	fs.StringVar(&f.service2, "service2", "127.0.0.1:8001", "service2 listen address")
	fs.StringVar(&f.statsdExporter, "statsd-exporter", "127.0.0.1:9102", "statsd_exporter's metrics page (with STATSD_EXPORTER_BIN)")
	fs.StringVar(&f.prometheus, "prometheus", "127.0.0.1:9090", "Prometheus's address (with PROMETHEUS_BIN)")
	fs.StringVar(&f.alertmanager, "alertmanager", "127.0.0.1:9093", "Alertmanager's API (with ALERTMANAGER_BIN and the metrics pipeline)")
	fs.StringVar(&f.alertlog, "alertlog", "127.0.0.1:9095", "alertlog, the webhook receiver Alertmanager notifies (with ALERTMANAGER_BIN)")
	fs.StringVar(&f.toxiproxy, "toxiproxy", "127.0.0.1:8474", "toxiproxy's API, for make chaos-*")
	fs.StringVar(&f.jaeger, "jaeger", "127.0.0.1:16686", "Jaeger's query API (with JAEGER_BIN and OTELCOL_BIN)")
	fs.StringVar(&f.otlpGRPC, "otlp-grpc", "127.0.0.1:4317", "the collector's OTLP gRPC receiver (with JAEGER_BIN and OTELCOL_BIN)")
	fs.StringVar(&f.statsdUDP, "statsd-udp", "127.0.0.1:9125", "statsd_exporter's DogStatsD port, where the services send metrics (UDP)")
	fs.StringVar(&f.otlpHTTP, "otlp-http", "127.0.0.1:4318", "the collector's OTLP HTTP receiver (with JAEGER_BIN and OTELCOL_BIN)")
	fs.StringVar(&f.loki, "loki", "127.0.0.1:3100", "the stand-in for Loki: its push and log-query API, fed by the collector (with OTELCOL_BIN)")
	fs.StringVar(&f.nats, "nats", "127.0.0.1:4222", "NATS's client port (with NATS_SERVER_BIN); often taken by a NATS of your own: -nats 127.0.0.1:0")
	fs.StringVar(&f.natsMonitor, "nats-monitor", "127.0.0.1:8222", "NATS's monitoring endpoint (with NATS_SERVER_BIN)")
	fs.StringVar(&f.stateDir, "state", ".cache/local", "the runner's state: lock, pids, logs (make logs, make chaos-kill read it)")
	fs.BoolVar(&f.quiet, "quiet", false, "do not stream the processes' log lines to the terminal (logs/ keeps them)")
	return fs, f
}

// toolsFromEnv is where make local says the telemetry programs are.
func toolsFromEnv() devstack.Telemetry {
	return devstack.Telemetry{
		StatsdExporterBin: os.Getenv("STATSD_EXPORTER_BIN"), PrometheusBin: os.Getenv("PROMETHEUS_BIN"),
		OtelcolBin: os.Getenv("OTELCOL_BIN"), JaegerBin: os.Getenv("JAEGER_BIN"), NATSBin: os.Getenv("NATS_SERVER_BIN"),
		AlertmanagerBin: os.Getenv("ALERTMANAGER_BIN"),
	}
}

// plan is what this run starts: the tools it has, those still to build
// (a first run builds them after the stack is up), and the addresses.
type plan struct {
	tools            devstack.Telemetry
	metrics, tracing bool
	missing          []string // tools set but not built yet
	buildCmd         string   // the command that builds them (make's)
	wanted           []namedAddr
}

func (p plan) later() bool { return len(p.missing) > 0 }

// started are the tools this run starts: the metrics pipeline when both
// its programs are there (Alertmanager with it), the tracing pipeline
// likewise, and NATS.
func (p plan) started() devstack.Telemetry {
	t := devstack.Telemetry{NATSBin: p.tools.NATSBin}
	if p.metrics {
		t.StatsdExporterBin, t.PrometheusBin, t.AlertmanagerBin = p.tools.StatsdExporterBin, p.tools.PrometheusBin, p.tools.AlertmanagerBin
	}
	if p.tracing {
		t.OtelcolBin, t.JaegerBin = p.tools.OtelcolBin, p.tools.JaegerBin
	}
	return t
}

func newPlan(f *localFlags, tools devstack.Telemetry, buildCmd string) (plan, error) {
	p := plan{tools: tools, buildCmd: buildCmd, missing: missingTools(tools),
		metrics: tools.StatsdExporterBin != "" && tools.PrometheusBin != "",
		tracing: tools.OtelcolBin != "" && tools.JaegerBin != ""}
	if p.later() && buildCmd == "" {
		return p, fmt.Errorf("not built: %s (make local builds them)", strings.Join(p.missing, ", "))
	}
	p.wanted = []namedAddr{{"service1", f.service1, ""}, {"service2", f.service2, ""}, {"toxiproxy", f.toxiproxy, ""}, {"loki", f.loki, ""}}
	if p.metrics {
		p.wanted = append(p.wanted, namedAddr{"statsd-exporter", f.statsdExporter, ""}, namedAddr{"prometheus", f.prometheus, ""}, namedAddr{"statsd-udp", f.statsdUDP, "udp"})
		if tools.AlertmanagerBin != "" {
			p.wanted = append(p.wanted, namedAddr{"alertmanager", f.alertmanager, ""}, namedAddr{"alertlog", f.alertlog, ""})
		}
	}
	if p.tracing {
		p.wanted = append(p.wanted, namedAddr{"jaeger", f.jaeger, ""}, namedAddr{"otlp-grpc", f.otlpGRPC, ""}, namedAddr{"otlp-http", f.otlpHTTP, ""})
	}
	if tools.NATSBin != "" {
		p.wanted = append(p.wanted, namedAddr{"nats", f.nats, ""}, namedAddr{"nats-monitor", f.natsMonitor, ""})
	}
	return p, nil
}

// limitsFromEnv passes service1's rate limits on when they are set, as
// compose does: make release-gate-capacity measures the stack, not its
// limit, only with them raised (docs/slo.md).
func limitsFromEnv() []string {
	var env []string
	for _, k := range []string{"RATE_LIMIT_PER_CLIENT", "RATE_LIMIT_GLOBAL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// options are the dev stack's options for this run: compose's wiring on
// the flags' addresses; the tools that are built now, the rest later.
func (p plan) options(f *localFlags, root, work string, log io.Writer, spool string) devstack.Options {
	opts := devstack.Options{
		RepoRoot: root,
		WorkDir:  work,
		Log:      log,
		Version:  gitVersion(root),
		Env:      map[string][]string{"service1": limitsFromEnv(), "service2": {"SPOOL_DIR=" + spool}},
		Services: devstack.ServicesOptions{Service1Addr: f.service1, Service2Addr: f.service2},
		MySQL:    devstack.MySQLOptions{DSN: os.Getenv("MYSQL_TEST_DSN")},
		// toxiproxy on both hops, as in compose, with its proxies' names:
		// make chaos-latency and the others work on this stack too.
		Chaos: devstack.ChaosOptions{Enabled: true, Addr: f.toxiproxy},
		// The logs pipeline as in compose: every program's output kept as
		// Docker keeps it, read by the collector, sent to a stand-in for
		// Loki (Loki is AGPL and never built here) on Loki's port.
		Loki:     devstack.LokiOptions{Addr: f.loki},
		Metrics:  devstack.MetricsOptions{ExporterWebAddr: f.statsdExporter, PrometheusAddr: f.prometheus, StatsdUDPAddr: f.statsdUDP},
		Alerting: devstack.AlertingOptions{AlertmanagerAddr: f.alertmanager, AlertLogAddr: f.alertlog},
		// VENDOR_OTLP_ENDPOINT (and _HEADERS) fan the traces and logs out
		// to a vendor too, as on compose (docs/vendor.md).
		Collector: devstack.CollectorOptions{GRPCAddr: f.otlpGRPC, HTTPAddr: f.otlpHTTP,
			VendorEndpoint: os.Getenv("VENDOR_OTLP_ENDPOINT"), VendorHeaders: os.Getenv("VENDOR_OTLP_HEADERS")},
		Jaeger: devstack.JaegerOptions{QueryAddr: f.jaeger},
		// The tools that are built start with the stack; on a first run
		// they start once built (StartTelemetry).
		TelemetryLater: p.later() && p.started() != devstack.Telemetry{},
	}
	if p.tools.NATSBin != "" {
		// NATS and the worker, as in compose (one worker here).
		opts.NATS = devstack.NATSOptions{Addr: f.nats, MonitorAddr: f.natsMonitor}
	}
	if !p.later() {
		opts.Telemetry = p.started()
	}
	return opts
}

// run is make local, top to bottom: the flags and the plan, the lock and
// the ports, the signals, the logs and the temporary folder, the stack, then
// supervision until a signal, and the stop.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs, f := newFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	// make local sets LOCAL_BUILD_TOOLS to the command that builds the
	// tools: on a first run the stack serves at once and the telemetry
	// joins when they are built.
	p, err := newPlan(f, toolsFromEnv(), os.Getenv("LOCAL_BUILD_TOOLS"))
	if err != nil {
		return err
	}
	// The lock first: another runner is named as such, not as ports taken;
	// and what a killed runner left may hold ports until it is cleaned up.
	state, err := openState(f.stateDir, stdout)
	if err != nil {
		return err
	}
	defer state.close()
	if err := checkFree(p.wanted); err != nil {
		return err
	}
	// Ctrl-C, a supervisor's or make's SIGTERM, a closed terminal's SIGHUP:
	// each stops every process and removes the temporary folder.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	root, err := os.Getwd()
	if err != nil {
		return err
	}
	var term io.Writer = stdout
	if f.quiet {
		term = io.Discard
	}
	log := &logFiles{term: term, dir: filepath.Join(f.stateDir, "logs")}
	defer log.close()
	spoolNote, err := state.mountSpool()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "failready-stack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := state.setWorkdir(work); err != nil {
		return err
	}

	if p.later() {
		fmt.Fprintf(stdout, "first run: building %s once, side by side, after the stack is up (%s);\n"+
			"the services serve meanwhile (a new user's task waits in the outbox), and metrics, traces, NATS and the worker join when the build is done\n", strings.Join(p.missing, ", "), firstBuildTime)
	}
	fmt.Fprintln(stdout, "building and starting the stack...")
	st, err := devstack.Start(ctx, p.options(f, root, work, log, state.spool()))
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stdout, "stopped before the stack was up")
		return nil // a signal during the start: everything started is stopped
	}
	if err != nil {
		return err
	}
	state.record(st)
	printURLs(stdout, st, spoolNote)
	superviseUntilStopped(ctx, st, p, state, log, stdout)
	fmt.Fprintln(stdout, "stopping...")
	return st.Stop()
}

// superviseUntilStopped reports and restarts a program that dies, as
// compose's restart policy does, until a signal ends ctx. On a first run it
// builds and starts the telemetry meanwhile, and starts over once that has
// joined, to watch it too.
func superviseUntilStopped(ctx context.Context, st *devstack.Stack, p plan, state *state, log io.Writer, stdout io.Writer) {
	var telemetry chan error
	if p.later() {
		telemetry = make(chan error, 1)
		go func() {
			err := buildTools(ctx, p.buildCmd, log)
			if err == nil {
				err = st.StartTelemetry(ctx, p.started())
			}
			telemetry <- err
		}()
	}
	for {
		sctx, cancel := context.WithCancel(ctx)
		supervised := make(chan struct{})
		go func() {
			defer close(supervised)
			st.Supervise(sctx, func(e devstack.Event) {
				fmt.Fprintf(log, "local| %s %s\n", e.Name, e.Msg)
				if e.Pid != 0 {
					state.setPid(e.Name, e.Pid)
				}
			})
		}()
		select {
		case err := <-telemetry:
			cancel()
			<-supervised
			telemetry = nil
			if err != nil {
				fmt.Fprintf(stdout, "\nthe telemetry did not start (%v); the services go on without it\n", err)
				continue
			}
			state.record(st)
			fmt.Fprintln(stdout, "\nthe telemetry has joined:")
			printTelemetryURLs(stdout, st)
			continue
		case <-ctx.Done():
			cancel()
			<-supervised
		}
		break
	}
	if telemetry != nil {
		<-telemetry // the build and start, ended by ctx
	}
}

// firstBuildTime is what building the tools took on 2 cores from empty Go
// module and build caches, measured (see README).
const firstBuildTime = "about 15 minutes on 2 cores with empty Go caches"

// missingTools names the tools that are set but not built yet.
func missingTools(t devstack.Telemetry) []string {
	var missing []string
	for _, b := range []struct{ name, path string }{
		{"statsd_exporter", t.StatsdExporterBin}, {"Prometheus", t.PrometheusBin}, {"Alertmanager", t.AlertmanagerBin},
		{"the OpenTelemetry collector", t.OtelcolBin}, {"Jaeger", t.JaegerBin}, {"nats-server", t.NATSBin},
	} {
		if _, err := os.Stat(b.path); b.path != "" && err != nil {
			missing = append(missing, b.name)
		}
	}
	return missing
}

// buildTools runs the build command (make's), its output prefixed "build|"
// (so in logs/build.log too); ctx ending stops it, its children included.
func buildTools(ctx context.Context, command string, log io.Writer) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// A make of its own, not a part of the make that runs this runner.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(log, "build| %s\n", sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("building the tools: %w (see .cache/local/logs/build.log)", err)
	}
	fmt.Fprintf(log, "build| built in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// printURLs says where everything is, as make up does.
func printURLs(w io.Writer, st *devstack.Stack, spoolNote string) {
	mysqlAt := st.DB.Addr + " (database " + st.DB.Name + ", user " + st.DB.User + ")"
	fmt.Fprintf(w, `
failready is up (Ctrl-C stops it):
  service1  %s/        (try: curl -i %s/)
  service2  %s/users
  mysql     %s
`, st.Service1.URL(), st.Service1.URL(), st.Service2.URL(), mysqlAt)
	fmt.Fprintf(w, "  toxiproxy http://%s/proxies   (make chaos-latency, chaos-service2-down, chaos-mysql-down, chaos-reset-peer, chaos-reset)\n", st.Chaos.Addr)
	printTelemetryURLs(w, st)
	fmt.Fprintf(w, "  spool     service2's export spool is %s\n", spoolNote)
	fmt.Fprintln(w, "  logs      make logs (follows every program); scripts/logs service1 service2 | grep ...")
}

// printTelemetryURLs says where the telemetry programs are, those running.
func printTelemetryURLs(w io.Writer, st *devstack.Stack) {
	if st.Prometheus != nil {
		fmt.Fprintf(w, "  statsd-exporter %s/metrics   (DogStatsD on %s)\n  prometheus %s/api/v1/query?query=up   (the HTTP API; no web UI in this build)\n",
			st.StatsdExporter.URL(), st.StatsdUDP, st.Prometheus.URL())
	}
	if st.Alertmanager != nil {
		fmt.Fprintf(w, "  alertmanager %s/api/v2/alerts   (the API; no web UI in this build); its notifications: %s/alerts\n",
			st.Alertmanager.URL(), st.AlertLog.URL())
	}
	if st.Jaeger != nil {
		fmt.Fprintf(w, "  jaeger    %s/api/services, %s/api/traces/<trace id>   (the query API Grafana uses; this build has no UI, / is a placeholder page)\n",
			st.Jaeger.URL(), st.Jaeger.URL())
	}
	if st.NATS != nil {
		fmt.Fprintf(w, "  nats      %s (JetStream; monitoring %s/jsz?consumers=true); %d worker   (make chaos-nats-down, chaos-worker-slow, chaos-kill-worker, chaos-poison-task)\n",
			st.NATSDirectURL(), st.NATS.URL(), len(st.Workers))
	}
	if st.Collector != nil {
		fmt.Fprintf(w, "  collector OTLP gRPC %s, HTTP %s\n", st.OTLPEndpoint, st.OTLPHTTPEndpoint)
		fmt.Fprintf(w, "  loki      %s/loki/api/v1/query_range?query={service_name=\"service1\"}   (a stand-in for Loki: its log queries on the lines the collector sends; no metric queries)\n",
			st.Loki.URL())
	}
}

// namedAddr is a listen address, the program (and flag) that wants it, and
// its network: "udp", or TCP when empty.
type namedAddr struct{ name, addr, network string }

// checkFree fails, naming every taken one and the flag that moves it, when
// another program already listens on an address the stack wants: better
// than one program of the stack dying at start with "address in use".
func checkFree(addrs []namedAddr) error {
	var taken []string
	for _, a := range addrs {
		var ln io.Closer
		var err error
		if a.network == "udp" {
			ln, err = net.ListenPacket("udp", a.addr)
		} else {
			ln, err = net.Listen("tcp", a.addr)
		}
		if err != nil {
			taken = append(taken, fmt.Sprintf("%s (%s): %v; stop what listens there, or pass -%s 127.0.0.1:0 (make local LOCAL_FLAGS=\"-%s 127.0.0.1:0\")",
				a.addr, a.name, err, a.name, a.name))
			continue
		}
		ln.Close()
	}
	if len(taken) > 0 {
		return fmt.Errorf("ports taken:\n  %s", strings.Join(taken, "\n  "))
	}
	return nil
}

// gitVersion is the short commit, as `make up` stamps the images.
func gitVersion(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}
