package devstack

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/failready/failready/internal/devstack/lokidoor"
)

// LokiConfigFile is Loki's config in compose; the stand-in reads its index
// labels.
const LokiConfigFile = "deploy/loki/config.yaml"

// Loki is the stand-in for Loki that the stack serves in process: Loki's
// OTLP push and its log-query API, on what the collector sends it.
type Loki struct {
	*lokidoor.Door
	srv *http.Server
	ln  net.Listener
}

// URL is the stand-in's base URL (Loki's /ready, /otlp and /loki/api/v1
// under it).
func (l *Loki) URL() string { return "http://" + l.ln.Addr().String() }

func (l *Loki) stop() error {
	if err := l.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startLoki serves the stand-in on LokiAddr, with the index labels of
// compose's Loki config, keeping the last 200 000 records (about 200 MiB at
// most); the services' output is kept as container logs for the collector
// to read.
func (s *Stack) startLoki() error {
	cfg, err := os.ReadFile(filepath.Join(s.opts.RepoRoot, LokiConfigFile))
	if err != nil {
		return err
	}
	indexed, err := lokidoor.IndexLabels(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.opts.LokiAddr)
	if err != nil {
		return err
	}
	l := &Loki{Door: lokidoor.New(indexed, 200_000), ln: ln}
	l.srv = &http.Server{Handler: l.Door.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	s.Loki = l
	if s.opts.ContainerLogs == "" {
		s.opts.ContainerLogs = filepath.Join(s.opts.WorkDir, "containers")
	}
	return nil
}
