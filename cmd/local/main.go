// Command local runs the demo stack without Docker: MySQL (a private
// mariadbd, or MYSQL_TEST_DSN), service2 and service1 as host processes on
// loopback, wired as docker-compose.yml wires them (toxiproxy on both hops),
// plus statsd_exporter and Prometheus when STATSD_EXPORTER_BIN and
// PROMETHEUS_BIN name them (make local installs and sets them). It prints the URLs, streams every process's log
// lines, and tears everything down on SIGINT (Ctrl-C), SIGTERM or SIGHUP,
// exiting 0.
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
	quiet := fs.Bool("quiet", false, "do not stream the processes' log lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wanted := []namedAddr{{"service1", *s1}, {"service2", *s2}, {"toxiproxy", *toxi}}
	if os.Getenv("STATSD_EXPORTER_BIN") != "" && os.Getenv("PROMETHEUS_BIN") != "" {
		wanted = append(wanted, namedAddr{"statsd-exporter", *sx}, namedAddr{"prometheus", *prom})
	}
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
	var log io.Writer = stdout
	if *quiet {
		log = io.Discard
	}
	fmt.Fprintln(stdout, "building and starting the stack...")
	st, err := devstack.Start(ctx, devstack.Options{
		RepoRoot:     root,
		Log:          log,
		Version:      gitVersion(root),
		MySQLDSN:     os.Getenv("MYSQL_TEST_DSN"),
		Service1Addr: *s1,
		Service2Addr: *s2,
		// toxiproxy on both hops, as in compose, with its proxies' names:
		// make chaos-latency and the others work on this stack too.
		Chaos:     true,
		ChaosAddr: *toxi,

		StatsdExporterBin:     os.Getenv("STATSD_EXPORTER_BIN"),
		PrometheusBin:         os.Getenv("PROMETHEUS_BIN"),
		StatsdExporterWebAddr: *sx,
		PrometheusAddr:        *prom,
	})
	if err != nil {
		return err
	}
	mysqlAt := st.DB.Addr + " (database " + st.DB.Name + ", user " + st.DB.User + ")"
	fmt.Fprintf(stdout, `
failready is up (Ctrl-C stops it):
  service1  %s/        (try: curl -i %s/)
  service2  %s/users
  mysql     %s
`, st.Service1.URL(), st.Service1.URL(), st.Service2.URL(), mysqlAt)
	fmt.Fprintf(stdout, "  toxiproxy http://%s/proxies   (make chaos-latency, chaos-service2-down, chaos-mysql-down, chaos-reset-peer, chaos-reset)\n", st.Chaos.Addr)
	if st.Prometheus != nil {
		fmt.Fprintf(stdout, "  statsd-exporter %s/metrics\n  prometheus %s/api/v1/query?query=up   (the HTTP API; no web UI in this build)\n",
			st.StatsdExporter.URL(), st.Prometheus.URL())
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping...")
	return st.Stop()
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
