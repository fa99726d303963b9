// The client of service2: every resiliency pattern of a call in one place,
// in the order a call meets them (the budget and span around the call,
// retries around attempts, the breaker and the attempt timeout around each
// round trip), and the mapping of what comes back to the errors that
// handlers.go turns into HTTP answers. The retry loop itself is
// internal/retry's; this file says what is retryable for service2.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/breaker"
	"github.com/failready/failready/internal/deadline"
	"github.com/failready/failready/internal/exemplars"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/idempotency"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/retry"
	"github.com/failready/failready/internal/tracing"
)

// Errors of a call to service2, mapped to HTTP by the handlers.
var (
	errUnavailable = errors.New("service2 unavailable") // could not reach it
	errTimeout     = errors.New("service2 timed out")
)

// openError is a call the circuit breaker refused; RetryAfter is when it
// will let a probe through.
type openError struct{ RetryAfter time.Duration }

func (e *openError) Error() string { return "service2 circuit breaker open" }

// upstreamError is a non-2xx answer of service2, with its message.
type upstreamError struct {
	Status int
	Msg    string
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("service2 answered %d: %s", e.Status, e.Msg)
}

// maxResponseBytes bounds what service1 reads of a service2 response.
const maxResponseBytes = 4 << 20

// service2Client calls service2, resiliently. The http.Client and its pooled
// transport are created once and reused: a client per request would open a
// connection per request. Every call:
//   - runs inside the request's deadline budget, each attempt bounded by
//     SERVICE2_TIMEOUT, and tells service2 the time left (Request-Timeout);
//   - goes through the circuit breaker, which fails it fast while open;
//   - is retried (at most RETRY_MAX times, capped exponential backoff with
//     full jitter) when it is idempotent (a GET, or a POST with an
//     Idempotency-Key), the failure is transient (no answer, a timeout, 502,
//     503, 504), the retry budget allows it and the deadline leaves room;
//   - is measured per attempt and traced (service2-request, with the
//     breaker's state changes and the retries as span events).
type service2Client struct {
	base       *url.URL
	http       *http.Client
	timeout    time.Duration // one attempt
	retry      retry.Policy
	breaker    *breaker.Breaker
	logger     *slog.Logger
	metrics    *metrics.Client
	tags       *metrics.Tags[callKey]
	took       exemplars.Latency // each attempt, beside DogStatsD: its trace is the exemplar
	tookAttrs  *exemplars.Attrs[callKey]
	retryTags  *metrics.Tags[string]
	deniedTags *metrics.Tags[string]
	tracer     trace.Tracer
}

// callKey is the tag set of one attempt's duration.
type callKey struct {
	method, route string
	outcome       outcome
	status        int
}

// call is one logical call to service2, carried unchanged through its
// attempts.
type call struct {
	method string
	route  string // service2's route pattern, for metrics and spans
	path   string
	key    string // the Idempotency-Key; not empty makes a POST retryable
	in     any    // the JSON body, or nil
	out    any    // where a 2xx JSON answer is decoded, or nil
}

// outcome is how a call or an attempt ended.
type outcome int

const (
	succeeded outcome = iota // a 2xx
	refused                  // service2 answered 4xx: it works; the caller's input did not
	rejected                 // the breaker refused it, without a call
	timedOut
	failed // no answer, or a 5xx
)

// tag is the outcome's value in the client duration metric: service2
// answering, whatever it said below 500, is "ok".
func (o outcome) tag() string {
	return [...]string{"ok", "ok", "rejected", "timeout", "error"}[o]
}

// hurtsService2 reports an outcome that counts against service2 (its
// breaker): a refusal is service2 working.
func (o outcome) hurtsService2() bool { return o == timedOut || o == failed }

// outcomeOf classifies a call's error.
func outcomeOf(err error) outcome {
	var ue *upstreamError
	var oe *openError
	switch {
	case err == nil:
		return succeeded
	case errors.As(err, &oe):
		return rejected
	case errors.Is(err, errTimeout):
		return timedOut
	case errors.As(err, &ue) && ue.Status < 500:
		return refused
	}
	return failed
}

// resilience is the client's policy, from the environment.
type resilience struct {
	AttemptTimeout time.Duration
	MaxRetries     int
	Backoff        retry.Backoff
	BudgetRatio    float64
	Breaker        breaker.Settings
}

// ClientRequestDuration is the OpenTelemetry histogram of each attempt of a
// call to service2, as the semantic conventions name it.
const ClientRequestDuration = "http.client.request.duration"

func newService2Client(base *url.URL, p resilience, logger *slog.Logger, m *metrics.Client, tr tracing.Tracing, mp metric.MeterProvider) *service2Client {
	t := &http.Transport{
		Proxy:                 nil, // service2 is never behind an outbound proxy
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100, // the default of 2 would churn connections under load
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: p.AttemptTimeout,
	}
	c := &service2Client{
		base: base,
		// otelhttp outside: a client span per attempt, traceparent and
		// baggage injected; then the deadline budget and the request ID.
		http:    &http.Client{Transport: tr.Transport(deadline.Transport{Base: requestid.Transport{Base: t}})},
		timeout: p.AttemptTimeout,
		retry: retry.Policy{
			MaxRetries:  p.MaxRetries,
			Backoff:     p.Backoff,
			Budget:      retry.NewBudget(p.BudgetRatio, 10),
			MinTimeLeft: p.AttemptTimeout / 4,
			Retryable:   transient,
		},
		logger:  logger,
		metrics: m,
		tracer:  tr.Tracer("failready/service1"),
		tags: metrics.NewTags(500, func(k callKey) []string {
			return []string{"peer:service2", "method:" + k.method, "route:" + k.route,
				"outcome:" + k.outcome.tag(), "status:" + metrics.StatusTag(k.status)}
		}),
		tookAttrs: exemplars.NewAttrs(500, func(k callKey) []attribute.KeyValue {
			kv := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method), semconv.ServerAddress("service2"),
				semconv.URLTemplate(k.route)}
			if k.status != 0 {
				kv = append(kv, semconv.HTTPResponseStatusCode(k.status))
			}
			if k.outcome != succeeded && k.outcome != refused {
				kv = append(kv, semconv.ErrorTypeKey.String(k.outcome.tag()))
			}
			return kv
		}),
		retryTags:  metrics.NewTags(50, func(route string) []string { return []string{"peer:service2", "route:" + route} }),
		deniedTags: metrics.NewTags(10, func(reason string) []string { return []string{"peer:service2", "reason:" + reason} }),
	}
	// A bad instrument name loses the histogram (a zero Latency records
	// nothing), never the client.
	if took, err := exemplars.NewLatency(mp, ClientRequestDuration, "Duration of each attempt of a call to service2."); err == nil {
		c.took = took
	} else {
		logger.Error("exemplars: no client histogram", "error", err.Error())
	}
	toTags := metrics.NewTags(10, func(to string) []string { return []string{"peer:service2", "to:" + to} })
	p.Breaker.Name = "service2"
	c.breaker = breaker.New(p.Breaker, func(ctx context.Context, from, to string) {
		level := slog.LevelInfo
		if to == breaker.Open {
			level = slog.LevelWarn
		}
		// ctx is the call's that caused the change: the line carries its
		// request ID and trace.
		logger.Log(ctx, level, "circuit breaker state change", "peer", "service2", "from", from, "to", to)
		m.Count(metrics.BreakerTransitions, 1, toTags.Get(to))
	})
	return c
}

// breakerCollector reports the breaker's state as a gauge.
func (c *service2Client) breakerCollector() metrics.Collector {
	tags := []string{"peer:service2"}
	return func(m *metrics.Client) {
		v := map[string]float64{breaker.Closed: 0, breaker.HalfOpen: 1, breaker.Open: 2}[c.breaker.State()]
		m.Gauge(metrics.BreakerState, v, tags)
	}
}

func (c *service2Client) ListUsers(ctx context.Context) ([]user.User, error) {
	var body struct {
		Users []user.User `json:"users"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, route: "/users", path: "/users", out: &body}); err != nil {
		return nil, err
	}
	if body.Users == nil {
		body.Users = []user.User{}
	}
	return body.Users, nil
}

func (c *service2Client) GetUser(ctx context.Context, id int64) (user.User, error) {
	var u user.User
	err := c.do(ctx, call{method: http.MethodGet, route: "/users/{id}", path: "/users/" + strconv.FormatInt(id, 10), out: &u})
	return u, err
}

// CreateUser sends key as the Idempotency-Key, the same on every attempt,
// so that the POST can be retried: service2 creates at most one row for it.
func (c *service2Client) CreateUser(ctx context.Context, n user.New, key string) (user.User, error) {
	var u user.User
	err := c.do(ctx, call{method: http.MethodPost, route: "/users", path: "/users", key: key, in: n, out: &u})
	return u, err
}

// Ready reports whether service1 can reach service2: not while the breaker
// is open, and otherwise when service2 answers its liveness probe within
// timeout (one attempt, outside the breaker). It asks /healthz, not /readyz:
// service1 can still answer, with errors that say why, while service2's
// database is down.
func (c *service2Client) Ready(ctx context.Context, timeout time.Duration) error {
	if c.breaker.State() == breaker.Open {
		return &openError{c.breaker.RetryAfter()}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.roundTrip(ctx, call{method: http.MethodGet, path: health.LivePath})
	return err
}

// do makes a call, retried by c.retry, and decodes a 2xx JSON body into
// cl.out. The final failure is logged with the request ID and returned as
// errUnavailable, errTimeout, *openError or *upstreamError.
func (c *service2Client) do(ctx context.Context, cl call) error {
	// The talk's manual span around the whole call; each attempt's HTTP
	// client span nests inside it.
	ctx, span := c.tracer.Start(ctx, "service2-request", trace.WithAttributes(
		attribute.String("peer.service", "service2"), semconv.HTTPRoute(cl.route), semconv.HTTPRequestMethodKey.String(cl.method)))
	defer span.End()
	start := time.Now()
	err := c.retry.Do(ctx, retry.Call{
		Idempotent: cl.method == http.MethodGet || cl.key != "",
		Attempt: func(ctx context.Context) error {
			return c.attempt(ctx, span, cl)
		},
		OnRetry: func(attempt int, err error, delay time.Duration) {
			c.metrics.Count(metrics.ClientRetries, 1, c.retryTags.Get(cl.route))
			span.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", attempt), attribute.String("after", err.Error()),
				attribute.Int64("backoff_ms", delay.Milliseconds())))
		},
		OnDenied: func(reason string) { c.metrics.Count(metrics.ClientRetriesDenied, 1, c.deniedTags.Get(reason)) },
	})
	if err == nil {
		return nil
	}
	msg, level := "service2 call failed", slog.LevelError
	switch outcomeOf(err) {
	case refused:
		// service2 refused the caller's input: passed on, not a fault.
		msg, level = "service2 refused the request", slog.LevelInfo
	case rejected:
		level = slog.LevelWarn // the breaker's own state change is the error line
		tracing.Fail(span, err)
	default:
		tracing.Fail(span, err)
	}
	c.logger.Log(ctx, level, msg, "method", cl.method, "path", cl.path, "error", err.Error(),
		"duration_ms", float64(time.Since(start).Microseconds())/1000)
	return err
}

// attempt makes one attempt through the breaker, bounded by the attempt
// timeout, and measures it.
func (c *service2Client) attempt(ctx context.Context, span trace.Span, cl call) error {
	before := c.breaker.State()
	done, err := c.breaker.Allow(ctx)
	if err != nil {
		k := callKey{cl.method, cl.route, rejected, 0}
		c.metrics.Timing(metrics.ClientRequestDuration, 0, c.tags.Get(k))
		c.took.Record(ctx, 0, c.tookAttrs.Get(k))
		return &openError{c.breaker.RetryAfter()}
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	status, err := c.roundTrip(actx, cl)
	o := outcomeOf(err)
	// A caller who went away says nothing about service2.
	done(o.hurtsService2() && !errors.Is(ctx.Err(), context.Canceled))
	took, k := time.Since(start), callKey{cl.method, cl.route, o, status}
	c.metrics.Timing(metrics.ClientRequestDuration, took, c.tags.Get(k))
	c.took.Record(ctx, took, c.tookAttrs.Get(k))
	if after := c.breaker.State(); after != before {
		span.AddEvent("circuit breaker "+after, trace.WithAttributes(attribute.String("from", before)))
	}
	return err
}

// transient reports failures worth retrying: no answer, a timeout, or
// service2 saying it is temporarily unable (502, 503, 504).
func transient(err error) bool {
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue.Status == http.StatusBadGateway || ue.Status == http.StatusServiceUnavailable || ue.Status == http.StatusGatewayTimeout
	}
	return errors.Is(err, errUnavailable) || errors.Is(err, errTimeout)
}

// roundTrip returns the answer's status code (0 when there was none).
func (c *service2Client) roundTrip(ctx context.Context, cl call) (int, error) {
	var body io.Reader
	if cl.in != nil {
		b, err := json.Marshal(cl.in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.base.JoinPath(cl.path).String(), body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if cl.key != "" {
		req.Header.Set(idempotency.Header, cl.key)
	}
	if cl.in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("%w after %s: %w", errTimeout, c.timeout, err)
		}
		return 0, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return resp.StatusCode, fmt.Errorf("%w reading the response: %w", errTimeout, err)
		}
		return resp.StatusCode, fmt.Errorf("%w: reading the response: %w", errUnavailable, err)
	}
	if len(data) > maxResponseBytes {
		return resp.StatusCode, &upstreamError{Status: http.StatusBadGateway, Msg: "response too large"}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb respond.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, &upstreamError{Status: resp.StatusCode, Msg: eb.Error}
	}
	if cl.out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, cl.out); err != nil {
		return resp.StatusCode, &upstreamError{Status: http.StatusBadGateway, Msg: "malformed response: " + err.Error()}
	}
	return resp.StatusCode, nil
}
