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
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/tracing"
	"github.com/failready/failready/internal/user"
)

// Errors of a call to service2, mapped to HTTP by the handlers.
var (
	errUnavailable = errors.New("service2 unavailable") // could not reach it
	errTimeout     = errors.New("service2 timed out")
)

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

// service2Client calls service2. The http.Client and its pooled transport are
// created once and reused: a client per request would open a connection per
// request. The request ID travels with every call (requestid.Transport).
type service2Client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
	logger  *slog.Logger
	metrics *metrics.Client
	tags    *metrics.Tags[callKey]
	tracer  trace.Tracer
}

// callKey is the tag set of one call's duration.
type callKey struct {
	method, route, outcome string
	status                 int
}

func newService2Client(base *url.URL, timeout time.Duration, logger *slog.Logger, m *metrics.Client, tr tracing.Tracing) *service2Client {
	t := &http.Transport{
		Proxy:                 nil, // service2 is never behind an outbound proxy
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100, // the default of 2 would churn connections under load
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &service2Client{
		base: base,
		// otelhttp outside: a client span per call, traceparent and baggage injected.
		http:    &http.Client{Transport: tr.Transport(requestid.Transport{Base: t})},
		tracer:  tr.Tracer("failready/service1"),
		timeout: timeout,
		logger:  logger,
		metrics: m,
		tags: metrics.NewTags(500, func(k callKey) []string {
			return []string{"peer:service2", "method:" + k.method, "route:" + k.route,
				"outcome:" + k.outcome, "status:" + metrics.StatusTag(k.status)}
		}),
	}
}

func (c *service2Client) ListUsers(ctx context.Context) ([]user.User, error) {
	var body struct {
		Users []user.User `json:"users"`
	}
	if err := c.do(ctx, http.MethodGet, "/users", "/users", nil, &body); err != nil {
		return nil, err
	}
	if body.Users == nil {
		body.Users = []user.User{}
	}
	return body.Users, nil
}

func (c *service2Client) GetUser(ctx context.Context, id int64) (user.User, error) {
	var u user.User
	err := c.do(ctx, http.MethodGet, "/users/{id}", "/users/"+strconv.FormatInt(id, 10), nil, &u)
	return u, err
}

func (c *service2Client) CreateUser(ctx context.Context, n user.New) (user.User, error) {
	var u user.User
	err := c.do(ctx, http.MethodPost, "/users", "/users", n, &u)
	return u, err
}

// Ready reports whether service2 answers its liveness probe within timeout.
// It asks /healthz, not /readyz: service1 can still answer (with errors that
// say why) while service2's database is down.
func (c *service2Client) Ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.do(ctx, http.MethodGet, "/healthz", "/healthz", nil, nil)
}

// do makes one call, bounded by the client's timeout, and decodes a 2xx JSON
// body into out. route is service2's route pattern, for the metric. Every
// call is measured; failures are logged with the request ID and returned as
// errUnavailable, errTimeout or *upstreamError.
func (c *service2Client) do(ctx context.Context, method, route, path string, in, out any) error {
	// The talk's manual span around the whole call; the HTTP client span
	// nests inside it.
	ctx, span := c.tracer.Start(ctx, "service2-request", trace.WithAttributes(
		attribute.String("peer.service", "service2"), semconv.HTTPRoute(route), semconv.HTTPRequestMethodKey.String(method)))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	status, err := c.roundTrip(ctx, method, path, in, out)
	outcome := callOutcome(err)
	span.SetAttributes(attribute.String("outcome", outcome))
	if outcome != "ok" {
		tracing.Fail(span, err)
	}
	c.metrics.Timing(metrics.ClientRequestDuration, time.Since(start), c.tags.Get(callKey{method, route, outcome, status}))
	if err != nil {
		level := slog.LevelError
		var ue *upstreamError
		if errors.As(err, &ue) && ue.Status < 500 {
			level = slog.LevelInfo // the caller's mistake, passed on
		}
		c.logger.Log(ctx, level, "service2 call failed",
			"method", method, "path", path, "error", err.Error(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000)
	}
	return err
}

// callOutcome classifies a call for the metric: ok when service2 answered
// below 500 (a 404 is a good answer), timeout, or error.
func callOutcome(err error) string {
	var ue *upstreamError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errTimeout):
		return "timeout"
	case errors.As(err, &ue) && ue.Status < 500:
		return "ok" // service2 answered well; the caller's input was wrong
	}
	return "error"
}

// roundTrip returns the answer's status code (0 when there was none).
func (c *service2Client) roundTrip(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
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
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, &upstreamError{Status: http.StatusBadGateway, Msg: "malformed response: " + err.Error()}
	}
	return resp.StatusCode, nil
}
