package main

import (
	"os"
	"time"

	"github.com/failready/failready/app/mysqldb"
	"github.com/failready/failready/app/serviceconfig"
	"github.com/failready/failready/internal/envconfig"
)

// config is every setting of service2, read once from the environment. The
// defaults are the compose stack's.
type config struct {
	serviceconfig.Common // listen address, log level, timeouts, drain, telemetry
	// RequestTimeout is service2's own limit on a request, shorter than
	// service1's; a caller's Request-Timeout header can only shorten it.
	RequestTimeout time.Duration
	MaxInFlight    int    // load shedding
	SpoolDir       string // temporary files (exports); a small volume in compose

	MySQL mysqldb.Config

	// NATSURL is where the outbox relay publishes tasks; "off" runs no
	// relay (the tasks wait in the outbox).
	NATSURL string
	// OutboxInterval is the relay's pass when nothing wakes it (the rows
	// another replica wrote, or after NATS failed).
	OutboxInterval time.Duration
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{Common: serviceconfig.Read(env, ":8001")}
	c.RequestTimeout = env.Duration("REQUEST_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute)
	c.MaxInFlight = env.Int("MAX_IN_FLIGHT", 128, 1, 100000)
	c.SpoolDir = env.String("SPOOL_DIR", os.TempDir())
	c.MySQL = mysqldb.Read(env, mysqldb.Defaults{User: "failready", Password: "failready", MaxOpenConns: 20, MaxIdleConns: 10, QueryTimeout: time.Second})
	c.NATSURL = env.String("NATS_URL", "nats://nats:4222")
	c.OutboxInterval = env.Duration("OUTBOX_INTERVAL", time.Second, 10*time.Millisecond, time.Minute)
	if err := env.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}
