// Command lokidoor serves the Loki door (devstack/lokidoor) as a
// program of its own, in Loki's place where Loki cannot run: the compose
// smoke (compose.smoke.yaml) runs its image, failready-lokidoor, as the
// loki service. It answers Loki's command line as compose gives it:
//
//	lokidoor -config.file=/etc/loki/config.yaml   serve on :3100, with that config's index labels
//	lokidoor -health [-health.url=URL]             Loki's own probe: exit 0 when URL (/ready) answers 200
//
// It keeps the last 200 000 records in memory (Loki keeps them on disk).
// Not Loki: it takes the collector's OTLP logs and answers log queries, not
// metric queries.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/failready/failready/devstack/lokidoor"
	"github.com/failready/failready/internal/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "lokidoor:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends; ready, when not nil, gets the listening
// address.
func run(ctx context.Context, args []string, stdout io.Writer, ready chan<- string) error {
	fl := flag.NewFlagSet("lokidoor", flag.ContinueOnError)
	config := fl.String("config.file", "/etc/loki/config.yaml", "Loki's config: the door reads its index labels (limits_config.otlp_config)")
	listen := fl.String("listen", ":3100", "where to serve (Loki's HTTP port)")
	health := fl.Bool("health", false, "probe a running door (or Loki) at -health.url and exit 0 when ready")
	healthURL := fl.String("health.url", "http://localhost:3100/ready", "the URL -health asks")
	keep := fl.Int("keep", 200_000, "how many records to keep")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *health {
		return probe(*healthURL, stdout)
	}
	b, err := os.ReadFile(*config)
	if err != nil {
		return err
	}
	indexed, err := lokidoor.IndexLabels(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *config, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "lokidoor")
	log.Info("serving Loki's door (not Loki)", "addr", ln.Addr().String(), "index_labels", strings.Join(indexed, ","), "keep", *keep)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	t := httpserver.Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: time.Minute, Shutdown: 5 * time.Second}
	return httpserver.Run(ctx, httpserver.New(lokidoor.New(indexed, *keep).Handler(), t, log), ln, t, nil, log)
}

// probe is Loki's -health: GET the URL, healthy on 200.
func probe(url string, stdout io.Writer) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("health check failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: status code %d", resp.StatusCode)
	}
	fmt.Fprintln(stdout, "Loki's door is healthy")
	return nil
}
