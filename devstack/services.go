// The services in the dev stack: both are started the same way, with the
// environment compose gives them (serviceEnv), their addresses moved to
// loopback, and waited for until their readiness probe answers.

package devstack

import (
	"context"
	"fmt"
	"time"

	"github.com/failready/failready/internal/health"
)

// discardAddr is a loopback address nothing listens on: what is sent there
// is lost, as when a telemetry receiver is down in compose.
const discardAddr = "127.0.0.1:9"

// wiring is what ties a service to the rest of the stack.
type wiring struct {
	ListenAddr   string
	Service2URL  string    // service1's
	MySQLAddr    string    // service2's
	DB           *Database // service2's credentials
	StatsdAddr   string    // "" sends metrics nowhere
	OTLPEndpoint string    // "" turns tracing off
	NATSURL      string    // service2's and the worker's; "" runs service2 without its relay
}

// serviceEnv is the environment of the named service: the variables compose
// sets, pointed at loopback, then extra (which wins: later variables do).
func serviceEnv(name string, w wiring, extra []string) []string {
	env := []string{"LISTEN_ADDR=" + orDefault(w.ListenAddr, "127.0.0.1:0"), "DEPLOYMENT_ID=native"}
	switch name {
	case "service1":
		env = append(env, "SERVICE2_URL="+w.Service2URL)
	case "service2":
		env = append(env, "MYSQL_ADDR="+w.MySQLAddr, "MYSQL_USER="+w.DB.User,
			"MYSQL_PASSWORD="+w.DB.Password, "MYSQL_DATABASE="+w.DB.Name, "NATS_URL="+orDefault(w.NATSURL, "off"))
	case "worker":
		env = append(env, "MYSQL_ADDR="+w.MySQLAddr, "MYSQL_USER="+w.DB.WorkerUser,
			"MYSQL_PASSWORD="+w.DB.WorkerPassword, "MYSQL_DATABASE="+w.DB.Name, "NATS_URL="+w.NATSURL)
	}
	env = append(env, "STATSD_ADDR="+orDefault(w.StatsdAddr, discardAddr))
	if w.OTLPEndpoint == "" {
		// An exporter retrying a missing collector would only slow every
		// shutdown.
		env = append(env, "OTEL_SDK_DISABLED=true")
	} else {
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+w.OTLPEndpoint)
	}
	return append(env, extra...)
}

// startOrder lists the services in start order: the data owner first, then
// the edge that calls it.
func startOrder() []string { return []string{"service2", "service1"} }

// StartService starts (or restarts) the named service and waits until it
// answers its readiness probe.
func (s *Stack) StartService(ctx context.Context, name string) error {
	w := wiring{StatsdAddr: s.StatsdUDP, OTLPEndpoint: s.OTLPEndpoint}
	switch name {
	case "service1":
		s.mu.Lock()
		w.ListenAddr, w.Service2URL = s.opts.Services.Service1Addr, s.Service2.URL()
		s.mu.Unlock()
		if s.Chaos != nil {
			if err := s.Chaos.route("service2", &s.Chaos.Service2, s.Service2.Addr); err != nil {
				return err
			}
			w.Service2URL = "http://" + s.Chaos.Service2.Listen
		}
	case "service2":
		w.ListenAddr, w.MySQLAddr, w.DB, w.NATSURL = s.opts.Services.Service2Addr, s.DB.Addr, s.DB, s.NATSURL
		if s.Chaos != nil {
			w.MySQLAddr = s.Chaos.MySQL.Listen
		}
	default:
		return fmt.Errorf("no service %q", name)
	}
	p, err := StartProcess(ctx, name, s.bins[name], serviceEnv(name, w, s.opts.Env[name]), s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	*s.service(name) = p
	s.mu.Unlock()
	if name == "service2" && s.Chaos != nil && s.Chaos.Service2 != nil {
		// A restarted service2 may listen elsewhere: service1's proxy follows.
		if err := s.Chaos.route("service2", &s.Chaos.Service2, p.Addr); err != nil {
			return err
		}
	}
	return WaitReady(ctx, p.URL()+health.ReadyPath, 30*time.Second)
}

// service is where the stack keeps the named service's process.
func (s *Stack) service(name string) **Process {
	if name == "service1" {
		return &s.Service1
	}
	return &s.Service2
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
