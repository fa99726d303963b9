// Command alertlog is the stack's Alertmanager webhook receiver: it stands
// in for a pager and a ticket queue (deploy/alertmanager/alertmanager.yml
// routes both to it). Each notification is written to stdout as one JSON
// log line per alert, so the collector carries alerts to Loki beside the
// services' logs, and the last ones are listed at GET /alerts, for people
// and for the tests:
//
//	curl -s localhost:9095/alerts | jq '.[] | {receiver, status, alerts: [.alerts[].labels.alertname]}'
//
// Not a pattern to copy: in production Alertmanager sends to your pager
// and ticket system directly.
//
//	alertlog [-addr :9095] [-keep 200]
//	alertlog healthcheck [-addr ...]   (exit 0 when it answers: the image has no shell)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

var version = "dev"

// Notification is Alertmanager's webhook payload (version 4), the fields
// alertlog keeps.
type Notification struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"` // firing or resolved
	GroupKey          string            `json:"groupKey"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	Alerts            []Alert           `json:"alerts"`
	Received          time.Time         `json:"received"` // set by alertlog
}

// Alert is one alert of a notification.
type Alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
}

// maxBody bounds a notification: Alertmanager's are a few KiB.
const maxBody = 1 << 20

// receiver keeps the last keep notifications.
type receiver struct {
	log  *slog.Logger
	keep int
	mu   sync.Mutex
	last []Notification
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case req.URL.Path == "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case req.URL.Path != "/alerts":
		writeError(w, http.StatusNotFound, "no such path: POST /alerts (Alertmanager's webhook), GET /alerts, GET /healthz")
	case req.Method == http.MethodGet || req.Method == http.MethodHead:
		r.mu.Lock()
		list := append([]Notification{}, r.last...)
		r.mu.Unlock()
		writeJSON(w, http.StatusOK, list)
	case req.Method == http.MethodPost:
		r.receive(w, req)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (r *receiver) receive(w http.ResponseWriter, req *http.Request) {
	var n Notification
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
	if err := dec.Decode(&n); err != nil {
		writeError(w, http.StatusBadRequest, "not an Alertmanager notification: "+err.Error())
		return
	}
	if n.Receiver == "" || len(n.Alerts) == 0 {
		writeError(w, http.StatusBadRequest, "not an Alertmanager notification: no receiver or no alerts")
		return
	}
	n.Received = time.Now().UTC()
	for _, a := range n.Alerts {
		r.log.Warn("alert "+a.Status,
			"receiver", n.Receiver, "alertname", a.Labels["alertname"], "severity", a.Labels["severity"],
			"summary", a.Annotations["summary"], "runbook_url", a.Annotations["runbook_url"], "starts_at", a.StartsAt, "labels", a.Labels)
	}
	r.mu.Lock()
	r.last = append(r.last, n)
	if len(r.last) > r.keep {
		r.last = r.last[len(r.last)-r.keep:]
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "alertlog:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	health := len(args) > 0 && args[0] == "healthcheck"
	if health {
		args = args[1:]
	}
	fs := flag.NewFlagSet("alertlog", flag.ContinueOnError)
	addr := fs.String("addr", ":9095", "listen address")
	keep := fs.Int("keep", 200, "notifications kept for GET /alerts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if health {
		return healthcheck(*addr)
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "alertlog", "version", version)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           &receiver{log: log, keep: max(*keep, 1)},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func healthcheck(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}
