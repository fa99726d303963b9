package main

import (
	"net/url"
	"time"

	"github.com/failready/failready/app/serviceconfig"
	"github.com/failready/failready/internal/breaker"
	"github.com/failready/failready/internal/envconfig"
	"github.com/failready/failready/internal/ratelimit"
	"github.com/failready/failready/internal/retry"
)

// config is every setting of service1, read once from the environment. The
// defaults are the compose stack's.
type config struct {
	serviceconfig.Common // listen address, log level, timeouts, drain, telemetry

	RequestTimeout time.Duration // the whole request's budget
	MaxInFlight    int           // load shedding
	RateLimit      ratelimit.Limits

	Service2URL  *url.URL
	Service2     resilience
	ReadyTimeout time.Duration // /readyz's probe of service2
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{Common: serviceconfig.Read(env, ":8000")}
	// The budget: REQUEST_TIMEOUT (3s) covers a first attempt that times out
	// (SERVICE2_TIMEOUT, 1s), a backoff (≤ 50ms), a second attempt (1s), a
	// backoff (≤ 100ms) and most of a third; a retry that would not have a
	// quarter of an attempt's time left is not made. service2's own limit
	// (2s) is below it, and service2 also gets the time left in each call.
	c.RequestTimeout = env.Duration("REQUEST_TIMEOUT", 3*time.Second, 10*time.Millisecond, time.Minute)
	c.MaxInFlight = env.Int("MAX_IN_FLIGHT", 256, 1, 100000)
	c.RateLimit = ratelimit.Limits{
		PerClient: env.Int("RATE_LIMIT_PER_CLIENT", 100, 1, 1000000),
		Global:    env.Int("RATE_LIMIT_GLOBAL", 1000, 1, 10000000),
		Window:    env.Duration("RATE_LIMIT_WINDOW", time.Second, time.Second, time.Hour),
	}
	c.Service2URL = env.URL("SERVICE2_URL", "http://service2:8001")
	c.Service2 = resilience{
		AttemptTimeout: env.Duration("SERVICE2_TIMEOUT", time.Second, time.Millisecond, time.Minute),
		MaxRetries:     env.Int("RETRY_MAX", 2, 0, 10),
		Backoff: retry.Backoff{
			Base: env.Duration("RETRY_BACKOFF_BASE", 50*time.Millisecond, time.Millisecond, time.Minute),
			Cap:  env.Duration("RETRY_BACKOFF_CAP", 500*time.Millisecond, time.Millisecond, time.Minute),
		},
		BudgetRatio: env.Float("RETRY_BUDGET_RATIO", 0.1, 0, 1),
		Breaker: breaker.Settings{
			ConsecutiveFailures: uint32(env.Int("BREAKER_CONSECUTIVE_FAILURES", 5, 1, 1000)),
			FailureRatio:        env.Float("BREAKER_FAILURE_RATIO", 0.5, 0.01, 1),
			MinRequests:         uint32(env.Int("BREAKER_MIN_REQUESTS", 20, 1, 100000)),
			Window:              env.Duration("BREAKER_WINDOW", 10*time.Second, 100*time.Millisecond, time.Hour),
			OpenFor:             env.Duration("BREAKER_OPEN_FOR", 5*time.Second, 10*time.Millisecond, time.Hour),
			HalfOpenProbes:      uint32(env.Int("BREAKER_HALF_OPEN_PROBES", 1, 1, 100)),
		},
	}
	c.ReadyTimeout = env.Duration("READY_TIMEOUT", time.Second, time.Millisecond, 10*time.Second)
	if err := env.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}
