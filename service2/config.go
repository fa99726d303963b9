package main

import (
	"os"
	"time"

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

	MySQL mysqlConfig

	// NATSURL is where the outbox relay publishes tasks; "off" runs no
	// relay (the tasks wait in the outbox).
	NATSURL string
	// OutboxInterval is the relay's pass when nothing wakes it (the rows
	// another replica wrote, or after NATS failed).
	OutboxInterval time.Duration
}

type mysqlConfig struct {
	Addr     string
	User     string
	Password string
	Database string

	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration // under the server's wait_timeout and any proxy's idle cut
	ConnMaxIdleTime time.Duration
	DialTimeout     time.Duration // DSN timeout: TCP connect and handshake
	IOTimeout       time.Duration // DSN readTimeout and writeTimeout: a dead peer
	QueryTimeout    time.Duration // one statement, from the handler's context
	PingTimeout     time.Duration // /readyz
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{Common: serviceconfig.Read(env, ":8001")}
	c.RequestTimeout = env.Duration("REQUEST_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute)
	c.MaxInFlight = env.Int("MAX_IN_FLIGHT", 128, 1, 100000)
	c.SpoolDir = env.String("SPOOL_DIR", os.TempDir())
	c.MySQL = mysqlConfig{
		Addr:            env.HostPort("MYSQL_ADDR", "mysql:3306"),
		User:            env.String("MYSQL_USER", "failready"),
		Password:        env.String("MYSQL_PASSWORD", "failready"),
		Database:        env.String("MYSQL_DATABASE", "failready"),
		MaxOpenConns:    env.Int("DB_MAX_OPEN_CONNS", 20, 1, 1000),
		MaxIdleConns:    env.Int("DB_MAX_IDLE_CONNS", 10, 0, 1000),
		ConnMaxLifetime: env.Duration("DB_CONN_MAX_LIFETIME", 3*time.Minute, time.Second, 5*time.Minute-time.Second),
		ConnMaxIdleTime: env.Duration("DB_CONN_MAX_IDLE_TIME", time.Minute, time.Second, time.Hour),
		DialTimeout:     env.Duration("DB_DIAL_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute),
		IOTimeout:       env.Duration("DB_IO_TIMEOUT", 5*time.Second, 10*time.Millisecond, time.Minute),
		QueryTimeout:    env.Duration("DB_QUERY_TIMEOUT", time.Second, time.Millisecond, time.Minute),
		PingTimeout:     env.Duration("DB_PING_TIMEOUT", 500*time.Millisecond, time.Millisecond, 10*time.Second),
	}
	c.NATSURL = env.String("NATS_URL", "nats://nats:4222")
	c.OutboxInterval = env.Duration("OUTBOX_INTERVAL", time.Second, 10*time.Millisecond, time.Minute)
	if err := env.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}
