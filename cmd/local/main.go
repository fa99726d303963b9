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

	"github.com/failready/failready/internal/devstack"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	// The compose stack's host ports, so that the walkthroughs' commands
	// work unchanged on either stack; port 0 picks a free one.
	s1 := fs.String("service1", "127.0.0.1:8000", "service1 listen address")
	s2 := fs.String("service2", "127.0.0.1:8001", "service2 listen address")
	sx := fs.String("statsd-exporter", "127.0.0.1:9102", "statsd_exporter's metrics page (with STATSD_EXPORTER_BIN)")
	prom := fs.String("prometheus", "127.0.0.1:9090", "Prometheus's address (with PROMETHEUS_BIN)")
	toxi := fs.String("toxiproxy", "127.0.0.1:8474", "toxiproxy's API, for make chaos-*")
	jaeger := fs.String("jaeger", "127.0.0.1:16686", "Jaeger's query API (with JAEGER_BIN and OTELCOL_BIN)")
	otlpGRPC := fs.String("otlp-grpc", "127.0.0.1:4317", "the collector's OTLP gRPC receiver (with JAEGER_BIN and OTELCOL_BIN)")
	otlpHTTP := fs.String("otlp-http", "127.0.0.1:4318", "the collector's OTLP HTTP receiver (with JAEGER_BIN and OTELCOL_BIN)")
	stateDir := fs.String("state", ".cache/local", "the runner's state: lock, pids, logs (make logs, make chaos-kill read it)")
	quiet := fs.Bool("quiet", false, "do not stream the processes' log lines to the terminal (logs/ keeps them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	metrics := os.Getenv("STATSD_EXPORTER_BIN") != "" && os.Getenv("PROMETHEUS_BIN") != ""
	tracing := os.Getenv("OTELCOL_BIN") != "" && os.Getenv("JAEGER_BIN") != ""
	wanted := []namedAddr{{"service1", *s1}, {"service2", *s2}, {"toxiproxy", *toxi}}
	if metrics {
		wanted = append(wanted, namedAddr{"statsd-exporter", *sx}, namedAddr{"prometheus", *prom})
	}
	if tracing {
		wanted = append(wanted, namedAddr{"jaeger", *jaeger}, namedAddr{"otlp-grpc", *otlpGRPC}, namedAddr{"otlp-http", *otlpHTTP})
	}
	// The lock first: another runner is named as such, not as ports taken;
	// and what a killed runner left may hold ports until it is cleaned up.
	st8, err := openState(*stateDir, stdout)
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
	if *quiet {
		term = io.Discard
	}
	log := &logFiles{term: term, dir: filepath.Join(*stateDir, "logs")}
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

	fmt.Fprintln(stdout, "building and starting the stack...")
	opts := devstack.Options{
		RepoRoot:     root,
		WorkDir:      work,
		Log:          log,
		Version:      gitVersion(root),
		MySQLDSN:     os.Getenv("MYSQL_TEST_DSN"),
		Service1Addr: *s1,
		Service2Addr: *s2,
		Env:          map[string][]string{"service2": {"SPOOL_DIR=" + st8.spool()}},
		// toxiproxy on both hops, as in compose, with its proxies' names:
		// make chaos-latency and the others work on this stack too.
		Chaos:     true,
		ChaosAddr: *toxi,
	}
	if metrics {
		opts.StatsdExporterBin, opts.PrometheusBin = os.Getenv("STATSD_EXPORTER_BIN"), os.Getenv("PROMETHEUS_BIN")
		opts.StatsdExporterWebAddr, opts.PrometheusAddr = *sx, *prom
	}
	if tracing {
		opts.OtelcolBin, opts.JaegerBin = os.Getenv("OTELCOL_BIN"), os.Getenv("JAEGER_BIN")
		opts.CollectorGRPCAddr, opts.CollectorHTTPAddr, opts.JaegerQueryAddr = *otlpGRPC, *otlpHTTP, *jaeger
	}
	st, err := devstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	for name, pid := range st.Programs() {
		st8.setPid(name, pid)
	}
	printURLs(stdout, st, spoolNote)

	// Supervision until a signal: a program that dies is reported and
	// restarted, as compose's restart policy does.
	supervised := make(chan struct{})
	go func() {
		defer close(supervised)
		st.Supervise(ctx, func(e devstack.Event) {
			fmt.Fprintf(log, "local| %s %s\n", e.Name, e.Msg)
			if e.Pid != 0 {
				st8.setPid(e.Name, e.Pid)
			}
		})
	}()
	<-ctx.Done()
	<-supervised
	fmt.Fprintln(stdout, "stopping...")
	return st.Stop()
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
	if st.Prometheus != nil {
		fmt.Fprintf(w, "  statsd-exporter %s/metrics\n  prometheus %s/api/v1/query?query=up   (the HTTP API; no web UI in this build)\n",
			st.StatsdExporter.URL(), st.Prometheus.URL())
	}
	if st.Jaeger != nil {
		fmt.Fprintf(w, "  jaeger    %s/api/services, %s/api/traces/<trace id>   (the query API Grafana uses; this build has no UI, / is a placeholder page)\n",
			st.Jaeger.URL(), st.Jaeger.URL())
		fmt.Fprintf(w, "  collector OTLP gRPC %s, HTTP %s\n", st.OTLPEndpoint, st.OTLPHTTPEndpoint)
	}
	fmt.Fprintf(w, "  spool     service2's export spool is %s\n", spoolNote)
	fmt.Fprintln(w, "  logs      make logs (follows every program); scripts/logs service1 service2 | grep ...")
}

// namedAddr is a listen address and the program that wants it.
type namedAddr struct{ name, addr string }

// checkFree fails, naming every taken one and the flag that moves it, when
// another program already listens on an address the stack wants: better
// than one program of the stack dying at start with "address in use".
func checkFree(addrs []namedAddr) error {
	var taken []string
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a.addr)
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
