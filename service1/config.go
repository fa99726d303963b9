package main

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/failready/failready/internal/envconfig"
	"github.com/failready/failready/internal/httpserver"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/tracing"
)

// config is every setting of service1, read once from the environment. The
// defaults are the compose stack's.
type config struct {
	ListenAddr   string
	DeploymentID string
	LogLevel     slog.Level
	HTTP         httpserver.Timeouts

	Service2URL     *url.URL
	Service2Timeout time.Duration // one call to service2, all of it
	ReadyTimeout    time.Duration // /readyz's probe of service2

	StatsdAddr string // where metrics go (DogStatsD over UDP)
	Tracing    tracing.Config
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	var c config
	c.ListenAddr = env.HostPort("LISTEN_ADDR", ":8000")
	c.DeploymentID = env.String("DEPLOYMENT_ID", "local")
	lvl, err := logging.ParseLevel(env.String("LOG_LEVEL", "info"))
	env.Check("LOG_LEVEL", err)
	c.LogLevel = lvl
	c.HTTP = httpserver.ReadTimeouts(env)
	c.Service2URL = env.URL("SERVICE2_URL", "http://service2:8001")
	c.Service2Timeout = env.Duration("SERVICE2_TIMEOUT", 5*time.Second, time.Millisecond, time.Minute)
	c.ReadyTimeout = env.Duration("READY_TIMEOUT", time.Second, time.Millisecond, 10*time.Second)
	c.StatsdAddr = metrics.ReadAddr(env)
	c.Tracing = tracing.ReadConfig(env)
	if err := env.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}
