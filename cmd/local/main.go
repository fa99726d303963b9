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

// localFlags are make local's flags: the listen addresses, then the rest.
type localFlags struct {
	s1, s2, sx, prom, am, alertlog, toxi, jaeger, otlpGRPC, sudp, otlpHTTP, loki, natsAddr, natsMon *string

	stateDir *string
	quiet    *bool
}

// newFlags defines make local's flags on a new flag set.
func newFlags() (*flag.FlagSet, *localFlags) {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	f := &localFlags{}
	// The compose stack's host ports, so that the walkthroughs' commands
	// work unchanged on either stack; port 0 picks a free one.
	f.s1 = fs.String("service1", "127.0.0.1:8000", "service1 listen address")
	f.s2 = fs.String("service2", "127.0.0.1:8001", "service2 listen address")
	f.sx = fs.String("statsd-exporter", "127.0.0.1:9102", "statsd_exporter's metrics page (with STATSD_EXPORTER_BIN)")
	f.prom = fs.String("prometheus", "127.0.0.1:9090", "Prometheus's address (with PROMETHEUS_BIN)")
	f.am = fs.String("alertmanager", "127.0.0.1:9093", "Alertmanager's API (with ALERTMANAGER_BIN and the metrics pipeline)")
	f.alertlog = fs.String("alertlog", "127.0.0.1:9095", "alertlog, the webhook receiver Alertmanager notifies (with ALERTMANAGER_BIN)")
	f.toxi = fs.String("toxiproxy", "127.0.0.1:8474", "toxiproxy's API, for make chaos-*")
	f.jaeger = fs.String("jaeger", "127.0.0.1:16686", "Jaeger's query API (with JAEGER_BIN and OTELCOL_BIN)")
	f.otlpGRPC = fs.String("otlp-grpc", "127.0.0.1:4317", "the collector's OTLP gRPC receiver (with JAEGER_BIN and OTELCOL_BIN)")
	f.sudp = fs.String("statsd-udp", "127.0.0.1:9125", "statsd_exporter's DogStatsD port, where the services send metrics (UDP)")
	f.otlpHTTP = fs.String("otlp-http", "127.0.0.1:4318", "the collector's OTLP HTTP receiver (with JAEGER_BIN and OTELCOL_BIN)")
	f.loki = fs.String("loki", "127.0.0.1:3100", "the stand-in for Loki: its push and log-query API, fed by the collector (with OTELCOL_BIN)")
	f.natsAddr = fs.String("nats", "127.0.0.1:4222", "NATS's client port (with NATS_SERVER_BIN); often taken by a NATS of your own: -nats 127.0.0.1:0")
	f.natsMon = fs.String("nats-monitor", "127.0.0.1:8222", "NATS's monitoring endpoint (with NATS_SERVER_BIN)")
	f.stateDir = fs.String("state", ".cache/local", "the runner's state: lock, pids, logs (make logs, make chaos-kill read it)")
	f.quiet = fs.Bool("quiet", false, "do not stream the processes' log lines to the terminal (logs/ keeps them)")
	return fs, f
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs, f := newFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	tools := devstack.Telemetry{
		StatsdExporterBin: os.Getenv("STATSD_EXPORTER_BIN"), PrometheusBin: os.Getenv("PROMETHEUS_BIN"),
		OtelcolBin: os.Getenv("OTELCOL_BIN"), JaegerBin: os.Getenv("JAEGER_BIN"), NATSBin: os.Getenv("NATS_SERVER_BIN"),
		AlertmanagerBin: os.Getenv("ALERTMANAGER_BIN"),
	}
	metrics := tools.StatsdExporterBin != "" && tools.PrometheusBin != ""
	tracing := tools.OtelcolBin != "" && tools.JaegerBin != ""
	// make local sets LOCAL_BUILD_TOOLS to the command that builds the
	// tools: on a first run the stack serves at once and the telemetry
	// joins when they are built.
	buildCmd := os.Getenv("LOCAL_BUILD_TOOLS")
	missing := missingTools(tools)
	if len(missing) > 0 && buildCmd == "" {
		return fmt.Errorf("not built: %s (make local builds them)", strings.Join(missing, ", "))
	}
	later := len(missing) > 0
	wanted := []namedAddr{{"service1", *f.s1, ""}, {"service2", *f.s2, ""}, {"toxiproxy", *f.toxi, ""}, {"loki", *f.loki, ""}}
	if metrics {
		wanted = append(wanted, namedAddr{"statsd-exporter", *f.sx, ""}, namedAddr{"prometheus", *f.prom, ""}, namedAddr{"statsd-udp", *f.sudp, "udp"})
		if tools.AlertmanagerBin != "" {
			wanted = append(wanted, namedAddr{"alertmanager", *f.am, ""}, namedAddr{"alertlog", *f.alertlog, ""})
		}
	}
	if tracing {
		wanted = append(wanted, namedAddr{"jaeger", *f.jaeger, ""}, namedAddr{"otlp-grpc", *f.otlpGRPC, ""}, namedAddr{"otlp-http", *f.otlpHTTP, ""})
	}
	if tools.NATSBin != "" {
		wanted = append(wanted, namedAddr{"nats", *f.natsAddr, ""}, namedAddr{"nats-monitor", *f.natsMon, ""})
	}
	// The lock first: another runner is named as such, not as ports taken;
	// and what a killed runner left may hold ports until it is cleaned up.
	st8, err := openState(*f.stateDir, stdout)
	if err != nil {
		return err
	}
	defer st8.close()
	if err := checkFree(wanted); err != nil {
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
	if *f.quiet {
		term = io.Discard
	}
	log := &logFiles{term: term, dir: filepath.Join(*f.stateDir, "logs")}
	defer log.close()
	spoolNote, err := st8.mountSpool()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "failready-stack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := st8.setWorkdir(work); err != nil {
		return err
	}

	if later {
		fmt.Fprintf(stdout, "first run: building %s once, side by side, after the stack is up (%s);\n"+
			"the services serve meanwhile (a new user's task waits in the outbox), and metrics, traces, NATS and the worker join when the build is done\n", strings.Join(missing, ", "), firstBuildTime)
	}
	fmt.Fprintln(stdout, "building and starting the stack...")
	opts := devstack.Options{
		RepoRoot:     root,
		WorkDir:      work,
		Log:          log,
		Version:      gitVersion(root),
		MySQLDSN:     os.Getenv("MYSQL_TEST_DSN"),
		Service1Addr: *f.s1,
		Service2Addr: *f.s2,
		Env:          map[string][]string{"service2": {"SPOOL_DIR=" + st8.spool()}},
		// toxiproxy on both hops, as in compose, with its proxies' names:
		// make chaos-latency and the others work on this stack too.
		Chaos:     true,
		ChaosAddr: *f.toxi,
		// The logs pipeline as in compose: every program's output kept as
		// Docker keeps it, read by the collector, sent to a stand-in for
		// Loki (Loki is AGPL and never built here) on Loki's port.
		LokiAddr: *f.loki,

		StatsdExporterWebAddr: *f.sx, PrometheusAddr: *f.prom, StatsdUDPAddr: *f.sudp,
		AlertmanagerAddr: *f.am, AlertLogAddr: *f.alertlog,
		CollectorGRPCAddr: *f.otlpGRPC, CollectorHTTPAddr: *f.otlpHTTP, JaegerQueryAddr: *f.jaeger,
		TelemetryLater: later && (metrics || tracing || tools.NATSBin != ""),
	}
	if tools.NATSBin != "" {
		// NATS and the worker, as in compose (one worker here).
		opts.NATSAddr, opts.NATSMonitorAddr = *f.natsAddr, *f.natsMon
		if !later {
			opts.NATSBin = tools.NATSBin
		}
	}
	if !later {
		if metrics {
			opts.StatsdExporterBin, opts.PrometheusBin, opts.AlertmanagerBin = tools.StatsdExporterBin, tools.PrometheusBin, tools.AlertmanagerBin
		}
		if tracing {
			opts.OtelcolBin, opts.JaegerBin = tools.OtelcolBin, tools.JaegerBin
		}
	}
	st, err := devstack.Start(ctx, opts)
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stdout, "stopped before the stack was up")
		return nil // a signal during the start: everything started is stopped
	}
	if err != nil {
		return err
	}
	for name, pid := range st.Programs() {
		st8.setPid(name, pid)
	}
	if st.NATS != nil {
		st8.setNATS(st.NATSDirectURL())
	}
	printURLs(stdout, st, spoolNote)

	// The telemetry, built and started in the background on a first run.
	var telemetry chan error
	if later {
		telemetry = make(chan error, 1)
		go func() {
			err := buildTools(ctx, buildCmd, log)
			if err == nil {
				err = st.StartTelemetry(ctx, tools)
			}
			telemetry <- err
		}()
	}
	// Supervision until a signal: a program that dies is reported and
	// restarted, as compose's restart policy does. It starts over once the
	// telemetry has joined, to watch it too.
	for {
		sctx, cancel := context.WithCancel(ctx)
		supervised := make(chan struct{})
		go func() {
			defer close(supervised)
			st.Supervise(sctx, func(e devstack.Event) {
				fmt.Fprintf(log, "local| %s %s\n", e.Name, e.Msg)
				if e.Pid != 0 {
					st8.setPid(e.Name, e.Pid)
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
			for name, pid := range st.Programs() {
				st8.setPid(name, pid)
			}
			if st.NATS != nil {
				st8.setNATS(st.NATSDirectURL())
			}
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
	fmt.Fprintln(stdout, "stopping...")
	return st.Stop()
}

// firstBuildTime is what building the tools takes from an empty Go build
// cache on 2 cores, measured (see README).
const firstBuildTime = "7.5 minutes on 2 cores with an empty Go build cache"

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
