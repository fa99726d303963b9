// Package metrics sends a service's metrics as DogStatsD over UDP to
// statsd-exporter, which turns them into Prometheus series (see
// deploy/statsd-exporter/mapping.yaml and Catalog).
//
// Telemetry must never hurt a request:
//   - a UDP send never waits for the receiver, and the client buffers and
//     sends from its own goroutine, so a dead or slow statsd-exporter costs
//     the lost metrics and nothing else;
//   - when the receiver's host does not resolve at start (its container is
//     not up yet), the service starts anyway with a no-op client and retries
//     in the background until it resolves;
//   - send errors are logged at most once a minute.
//
// The hot path makes at most one call per measurement and builds no tag
// slice: tags are cached per (method, route, status). The in-flight gauge,
// the pool and the runtime are sampled by a reporter every Interval instead
// of on every request.
//
// Depends on: github.com/DataDog/datadog-go/v5, internal/httplabel,
// github.com/go-chi/chi/v5/middleware (the response recorder),
// internal/outage (a receiver not resolvable yet is logged once).
//
// Tests use: github.com/go-chi/chi/v5, go.uber.org/goleak,
// internal/metrics/statsdtest.
package metrics

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"

	"github.com/failready/failready/internal/outage"
)

// Options of a Client.
type Options struct {
	Addr     string        // host:port of statsd-exporter's UDP listener; "" sends nothing
	Service  string        // the service tag on every metric
	Version  string        // on build_info
	Interval time.Duration // how often collectors run; 5s when zero
	Logger   *slog.Logger
}

// Collector samples something (a pool, the runtime) and sends it through c.
// Collectors run one at a time on the reporter's goroutine.
type Collector func(c *Client)

// Client sends metrics. Its methods are safe for concurrent use and never
// block on the network.
type Client struct {
	opts     Options
	sink     atomic.Pointer[sink]
	inFlight atomic.Int64
	stop     context.CancelFunc
	wg       sync.WaitGroup
	close    sync.Once
	closeErr error

	collectorsMu sync.Mutex
	collectors   []Collector
	lastErr      atomic.Int64 // unix nanoseconds of the last logged send error
}

type sink struct{ statsd.ClientInterface }

// New returns a Client sending to o.Addr and starts its reporter with the
// runtime and build-info collectors plus collectors. It does not fail: a
// receiver that cannot be resolved yet is retried in the background.
func New(o Options, collectors ...Collector) *Client {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: o}
	c.sink.Store(&sink{&statsd.NoOpClient{}})
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	if o.Addr != "" {
		if err := c.connect(); err != nil {
			// not resolvable yet (compose starts it beside us): sending nothing until it is
			away := outage.New("statsd "+o.Addr, outage.Options{Logger: o.Logger})
			away.Failed(ctx, err)
			c.wg.Go(func() { c.reconnect(ctx, away) })
		}
	}
	c.collectors = append([]Collector{c.collectInFlight, runtimeCollector(), buildInfoCollector(o.Version)}, collectors...)
	c.wg.Go(func() { c.report(ctx) })
	return c
}

func (c *Client) connect() error {
	if _, err := net.ResolveUDPAddr("udp", c.opts.Addr); err != nil {
		return err
	}
	cl, err := statsd.New(c.opts.Addr,
		statsd.WithoutTelemetry(),       // the Datadog agent's own metrics: statsd_exporter has no use for them
		statsd.WithoutOriginDetection(), // container tagging is the Datadog agent's feature
		statsd.WithTags([]string{"service:" + c.opts.Service}),
		statsd.WithErrorHandler(c.onError),
	)
	if err != nil {
		return err
	}
	c.sink.Store(&sink{cl})
	c.opts.Logger.Info("metrics: sending DogStatsD", "addr", c.opts.Addr)
	return nil
}

// reconnect tries every 5 s until the receiver resolves; away logs the
// wait once, once a minute, and its end with how long it took.
func (c *Client) reconnect(ctx context.Context, away *outage.Log) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := c.connect()
			away.Report(ctx, err)
			if err == nil {
				return
			}
		}
	}
}

// onError logs a failed send at most once a minute: a dead receiver must not
// flood the log either.
func (c *Client) onError(err error) {
	now := time.Now().UnixNano()
	last := c.lastErr.Load()
	if now-last < int64(time.Minute) || !c.lastErr.CompareAndSwap(last, now) {
		return
	}
	c.opts.Logger.Warn("metrics: send failed (further errors muted for a minute)", "error", err.Error())
}

// AddCollector adds a collector to the reporter, for one that can only be
// built after the Client (it samples something that sends metrics itself).
func (c *Client) AddCollector(col Collector) {
	c.collectorsMu.Lock()
	c.collectors = append(c.collectors, col)
	c.collectorsMu.Unlock()
}

func (c *Client) report(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	run := func() {
		c.collectorsMu.Lock()
		cols := append([]Collector(nil), c.collectors...)
		c.collectorsMu.Unlock()
		for _, col := range cols {
			col(c)
		}
	}
	run()
	for {
		select {
		case <-ctx.Done():
			run() // a last sample before the final flush
			return
		case <-t.C:
			run()
		}
	}
}

// Close stops the reporter, flushes what is buffered and closes the socket.
// Call it after the HTTP server has drained. Later calls do nothing (a closed
// statsd client would block on a second flush).
func (c *Client) Close() error {
	c.close.Do(func() {
		c.stop()
		c.wg.Wait()
		s := c.sink.Load()
		_ = s.Flush()
		c.closeErr = s.Close()
		c.sink.Store(&sink{&statsd.NoOpClient{}}) // sends after Close are dropped
	})
	return c.closeErr
}

// Timing records a duration (a histogram in seconds after mapping).
func (c *Client) Timing(name string, d time.Duration, tags []string) {
	_ = c.sink.Load().Timing(name, d, tags, 1)
}

// Count adds n to a counter.
func (c *Client) Count(name string, n int64, tags []string) {
	_ = c.sink.Load().Count(name, n, tags, 1)
}

// Gauge sets a gauge.
func (c *Client) Gauge(name string, v float64, tags []string) {
	_ = c.sink.Load().Gauge(name, v, tags, 1)
}

func (c *Client) collectInFlight(*Client) {
	c.Gauge(ServerActiveRequests, float64(c.inFlight.Load()), nil)
}

// Tags caches tag slices by a comparable key, so that the hot path builds
// none. It holds at most max keys; past that it builds a slice per call
// rather than grow without bound.
type Tags[K comparable] struct {
	mu    sync.RWMutex
	m     map[K][]string
	build func(K) []string
	max   int
}

// NewTags returns a cache that builds a key's tags with build.
func NewTags[K comparable](max int, build func(K) []string) *Tags[K] {
	return &Tags[K]{m: make(map[K][]string), build: build, max: max}
}

// Get returns the tags of k.
func (t *Tags[K]) Get(k K) []string {
	t.mu.RLock()
	tags, ok := t.m[k]
	t.mu.RUnlock()
	if ok {
		return tags
	}
	tags = t.build(k)
	t.mu.Lock()
	if len(t.m) < t.max {
		t.m[k] = tags
	}
	t.mu.Unlock()
	return tags
}

// StatusTag is a status code as a tag value, "none" for 0 (no response).
func StatusTag(code int) string {
	if code == 0 {
		return "none"
	}
	return strconv.Itoa(code)
}
