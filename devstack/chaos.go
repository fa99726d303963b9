// Chaos in the dev stack: toxiproxy in process on every hop.

package devstack

import (
	"context"
	"fmt"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"
)

// Chaos is toxiproxy, in process, between service1 and service2, between
// service2 (and the workers) and MySQL, and between them and NATS, as
// docker-compose.yml places it, with compose's proxy names (service2,
// mysql, nats, worker-nats): the chaos tests and make chaos-* add latency, cut
// connections and take a dependency away through it.
type Chaos struct {
	Addr     string // the API's host:port
	Client   *toxiclient.Client
	Service2 *toxiclient.Proxy // service1 → service2
	MySQL    *toxiclient.Proxy // service2 and the workers → MySQL
	NATS     *toxiclient.Proxy // service2 → NATS
	// WorkerNATS is the workers' own way to NATS (make chaos-worker-slow
	// slows them alone).
	WorkerNATS *toxiclient.Proxy
	server     *toxiproxy.ApiServer
	done       chan error
}

// startChaos starts the toxiproxy API on addr, or a free loopback port.
func startChaos(ctx context.Context, addr string) (*Chaos, error) {
	addr, err := addrOrFree(addr)
	if err != nil {
		return nil, err
	}
	c := &Chaos{
		Addr:   addr,
		server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		done:   make(chan error, 1),
	}
	go func() { c.done <- c.server.Listen(addr) }()
	c.Client = toxiclient.NewClient(addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Client.Proxies(); err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("toxiproxy API at %s did not answer", addr)
		}
		select {
		case err := <-c.done:
			return nil, fmt.Errorf("toxiproxy: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// proxy creates a proxy to upstream on a free loopback port.
func (c *Chaos) proxy(name, upstream string) (*toxiclient.Proxy, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return c.Client.CreateProxy(name, fmt.Sprintf("127.0.0.1:%d", port), upstream)
}

// route points the proxy *p at upstream, creating it on first use: a
// restarted service listens on a new port, and the proxy must follow it.
func (c *Chaos) route(name string, p **toxiclient.Proxy, upstream string) error {
	if *p == nil {
		proxy, err := c.proxy(name, upstream)
		*p = proxy
		return err
	}
	if (*p).Upstream == upstream {
		return nil
	}
	(*p).Upstream = upstream
	return (*p).Save()
}

// Reset removes every toxic and enables every proxy.
func (c *Chaos) Reset() error { return c.Client.ResetState() }

func (c *Chaos) stop() error {
	for _, p := range []*toxiclient.Proxy{c.Service2, c.MySQL, c.NATS, c.WorkerNATS} {
		if p != nil {
			_ = p.Delete()
		}
	}
	err := c.server.Shutdown()
	<-c.done
	return err
}
