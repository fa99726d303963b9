// NATS with JetStream, the stack's own (never the machine's): a private
// nats-server on loopback with its store in the work directory, so that a
// restart keeps the streams, as compose's volume does. And the workers that
// consume its tasks.

package devstack

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/failready/failready/internal/health"
)

// prepareNATS picks NATS's addresses (NATS.Addr and NATS.MonitorAddr, or
// free ports) and the URL the services and workers are given: through
// toxiproxy's nats proxy (the workers': worker-nats) when the stack has
// chaos. The services can be
// told it before NATS runs (TelemetryLater): their tasks wait meanwhile.
func (s *Stack) prepareNATS() error {
	addr, err := addrOrFree(s.opts.NATS.Addr)
	if err != nil {
		return err
	}
	mon, err := addrOrFree(s.opts.NATS.MonitorAddr)
	if err != nil {
		return err
	}
	s.opts.NATS.Addr, s.opts.NATS.MonitorAddr = addr, mon
	url, workerURL := "nats://"+addr, "nats://"+addr
	if s.Chaos != nil {
		if s.Chaos.NATS, err = s.Chaos.proxy("nats", addr); err != nil {
			return err
		}
		if s.Chaos.WorkerNATS, err = s.Chaos.proxy("worker-nats", addr); err != nil {
			return err
		}
		url, workerURL = "nats://"+s.Chaos.NATS.Listen, "nats://"+s.Chaos.WorkerNATS.Listen
	}
	s.mu.Lock()
	s.NATSURL, s.workerNATSURL = url, workerURL
	s.mu.Unlock()
	return nil
}

// startNATS runs nats-server with JetStream on the prepared addresses
// (its monitoring endpoint, which KEDA's nats-jetstream scaler reads, on
// the same host), and waits until JetStream answers /healthz.
func (s *Stack) startNATS(ctx context.Context) error {
	host, port, _ := net.SplitHostPort(s.opts.NATS.Addr)
	_, mport, _ := net.SplitHostPort(s.opts.NATS.MonitorAddr) // the monitoring listens on -a's host
	p, err := StartTool(ctx, "nats", s.opts.NATSBin, []string{
		"-a", host, "-p", port, "-m", mport,
		"-js", "-sd", filepath.Join(s.opts.WorkDir, "nats"), "-n", "failready",
	}, s.opts.NATS.MonitorAddr, "/healthz?js-enabled-only=true", s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.NATS = p
	s.mu.Unlock()
	return nil
}

// startWorkers starts the workers (Options.NATS.Workers, at least one).
func (s *Stack) startWorkers(ctx context.Context) error {
	for i := range max(s.opts.NATS.Workers, 1) {
		if err := s.StartWorker(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// workerName is the i-th worker's program name: worker, worker-2, ...
func workerName(i int) string {
	if i == 0 {
		return "worker"
	}
	return fmt.Sprintf("worker-%d", i+1)
}

// StartWorker starts (or restarts) worker i (0 is the first; one more than
// there are adds one) and waits until it is ready.
func (s *Stack) StartWorker(ctx context.Context, i int) error {
	s.mu.Lock()
	natsURL, n := s.workerNATSURL, len(s.Workers)
	s.mu.Unlock()
	if natsURL == "" {
		return fmt.Errorf("no NATS: start the stack with NATSBin")
	}
	if i > n {
		return fmt.Errorf("worker %d: there are %d", i, n)
	}
	name := workerName(i)
	w := wiring{StatsdAddr: s.StatsdUDP, OTLPEndpoint: s.OTLPEndpoint, MySQLAddr: s.DB.Addr, DB: s.DB, NATSURL: natsURL}
	p, err := StartProcess(ctx, name, s.bins["worker"], serviceEnv("worker", w, s.opts.Env["worker"]), s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	if i == n {
		if s.Workers == nil {
			// Room enough that appending never moves the slots the
			// supervisor holds pointers to.
			s.Workers = make([]*Process, 0, 16)
		}
		s.Workers = append(s.Workers, p)
	} else {
		s.Workers[i] = p
	}
	s.mu.Unlock()
	return WaitReady(ctx, p.URL()+health.ReadyPath, 30*time.Second)
}

// NATSDirectURL is NATS's own address, not through toxiproxy (for tools
// that inject tasks while an experiment cuts the services' way to it).
func (s *Stack) NATSDirectURL() string { return "nats://" + s.opts.NATS.Addr }
