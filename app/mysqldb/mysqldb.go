// Package mysqldb opens MySQL the one way service2 and the worker do: the
// MYSQL_* and DB_* settings read once (each service gives its own user and
// pool defaults), DSN timeouts that fail fast on a dead peer, a bounded
// pool with connections replaced before the server's or a proxy's idle cut,
// placeholders filled in by the driver, the driver's messages in the JSON
// log, and otelsql around the connector for a span per statement.
//
// Depends on: github.com/go-sql-driver/mysql, github.com/XSAM/otelsql,
// go.opentelemetry.io/otel (semconv), internal/envconfig, internal/tracing.
package mysqldb

import (
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/go-sql-driver/mysql"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/failready/failready/internal/envconfig"
	"github.com/failready/failready/internal/tracing"
)

// Config is how a service reaches MySQL.
type Config struct {
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
	QueryTimeout    time.Duration // one statement, from the caller's context
	PingTimeout     time.Duration // /readyz
}

// Defaults are what differs between the services when nothing is set: each
// has its own least-privileged user, pool size and statement deadline.
type Defaults struct {
	User, Password string
	MaxOpenConns   int
	MaxIdleConns   int
	QueryTimeout   time.Duration
}

// Read reads the MYSQL_* and DB_* variables; a bad value is reported by
// env.Err with the others.
func Read(env *envconfig.Reader, d Defaults) Config {
	return Config{
		Addr:            env.HostPort("MYSQL_ADDR", "mysql:3306"),
		User:            env.String("MYSQL_USER", d.User),
		Password:        env.String("MYSQL_PASSWORD", d.Password),
		Database:        env.String("MYSQL_DATABASE", "failready"),
		MaxOpenConns:    env.Int("DB_MAX_OPEN_CONNS", d.MaxOpenConns, 1, 1000),
		MaxIdleConns:    env.Int("DB_MAX_IDLE_CONNS", d.MaxIdleConns, 0, 1000),
		ConnMaxLifetime: env.Duration("DB_CONN_MAX_LIFETIME", 3*time.Minute, time.Second, 5*time.Minute-time.Second),
		ConnMaxIdleTime: env.Duration("DB_CONN_MAX_IDLE_TIME", time.Minute, time.Second, time.Hour),
		DialTimeout:     env.Duration("DB_DIAL_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute),
		IOTimeout:       env.Duration("DB_IO_TIMEOUT", 5*time.Second, 10*time.Millisecond, time.Minute),
		QueryTimeout:    env.Duration("DB_QUERY_TIMEOUT", d.QueryTimeout, time.Millisecond, time.Minute),
		PingTimeout:     env.Duration("DB_PING_TIMEOUT", 500*time.Millisecond, time.Millisecond, 10*time.Second),
	}
}

// Open returns the one pooled *sql.DB of the process. It does not connect:
// the service starts, and reports not ready, while MySQL is still down.
func Open(c Config, logger *slog.Logger, tr tracing.Tracing) (*sql.DB, error) {
	mc := mysql.NewConfig()
	mc.Net = "tcp"
	mc.Addr = c.Addr
	mc.User = c.User
	mc.Passwd = c.Password
	mc.DBName = c.Database
	mc.Timeout = c.DialTimeout
	mc.ReadTimeout = c.IOTimeout
	mc.WriteTimeout = c.IOTimeout
	mc.Logger = slog.NewLogLogger(logger.With("component", "mysql-driver").Handler(), slog.LevelWarn)
	// Placeholders are filled in by the driver (escaped for the connection's
	// charset) instead of a server-side prepare, execute and close: one round
	// trip per statement instead of three.
	mc.InterpolateParams = true
	mc.Collation = "utf8mb4_unicode_ci" // any name, any script, as the schema
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	db := otelsql.OpenDB(conn,
		otelsql.WithTracerProvider(tr.Provider),
		otelsql.WithAttributes(semconv.DBSystemNameMySQL, semconv.DBNamespace(c.Database), semconv.ServerAddress(c.Addr)),
		otelsql.WithSpanOptions(otelsql.SpanOptions{OmitConnResetSession: true, OmitRows: true}),
	)
	db.SetMaxOpenConns(c.MaxOpenConns)
	db.SetMaxIdleConns(c.MaxIdleConns)
	db.SetConnMaxLifetime(c.ConnMaxLifetime)
	db.SetConnMaxIdleTime(c.ConnMaxIdleTime)
	return db, nil
}
