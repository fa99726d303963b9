package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/failready/failready/internal/user"
)

// Store errors the handlers map to HTTP.
var (
	errNotFound    = errors.New("user not found")
	errUnavailable = errors.New("database unavailable")
)

// openDB returns the one pooled *sql.DB of the process. It does not connect:
// the service starts, and reports not ready, while MySQL is still down.
// The driver's own messages (a bad idle connection closed) go to the JSON log.
func openDB(c mysqlConfig, logger *slog.Logger) (*sql.DB, error) {
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
	mc.Collation = "utf8mb4_unicode_ci" // any name, any script, as the schema
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(c.MaxOpenConns)
	db.SetMaxIdleConns(c.MaxIdleConns)
	db.SetConnMaxLifetime(c.ConnMaxLifetime)
	db.SetConnMaxIdleTime(c.ConnMaxIdleTime)
	return db, nil
}

// store is the users table. Every statement is parameterised and bounded by
// queryTimeout on top of the caller's context.
type store struct {
	db           *sql.DB
	queryTimeout time.Duration
	logger       *slog.Logger
}

// listLimit bounds GET /users: the demo has no paging, so it must not dump a
// table that load tests have grown.
const listLimit = 100

func (s *store) ListUsers(ctx context.Context) ([]user.User, error) {
	ctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, first_name, last_name FROM users ORDER BY id LIMIT ?", listLimit)
	if err != nil {
		return nil, s.fail(ctx, "list_users", err)
	}
	defer rows.Close()
	users := []user.User{}
	for rows.Next() {
		var u user.User
		if err := rows.Scan(&u.ID, &u.FirstName, &u.LastName); err != nil {
			return nil, s.fail(ctx, "list_users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "list_users", err)
	}
	return users, nil
}

func (s *store) GetUser(ctx context.Context, id int64) (user.User, error) {
	ctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	u := user.User{}
	err := s.db.QueryRowContext(ctx,
		"SELECT id, first_name, last_name FROM users WHERE id = ?", id).
		Scan(&u.ID, &u.FirstName, &u.LastName)
	if errors.Is(err, sql.ErrNoRows) {
		return user.User{}, errNotFound
	}
	if err != nil {
		return user.User{}, s.fail(ctx, "get_user", err)
	}
	return u, nil
}

func (s *store) CreateUser(ctx context.Context, n user.New) (user.User, error) {
	ctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO users (first_name, last_name) VALUES (?, ?)", n.FirstName, n.LastName)
	if err != nil {
		return user.User{}, s.fail(ctx, "create_user", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return user.User{}, s.fail(ctx, "create_user", err)
	}
	return user.User{ID: id, FirstName: n.FirstName, LastName: n.LastName}, nil
}

// Ping checks that MySQL answers within timeout (readiness).
func (s *store) Ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return classify(err)
	}
	return nil
}

// fail logs a failed statement with the request's ID and returns the error
// classified for the handler.
func (s *store) fail(ctx context.Context, op string, err error) error {
	err = classify(err)
	s.logger.ErrorContext(ctx, "query failed", "op", op, "error", err.Error())
	return err
}

// classify wraps errors that mean "MySQL is not there" in errUnavailable, so
// that they answer 503 and not 500; a deadline stays a deadline (504).
func classify(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var netErr net.Error
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, mysql.ErrInvalidConn),
		errors.As(err, &myErr) && isServerGoingAway(myErr.Number):
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return err
}

// isServerGoingAway reports the MySQL errors of a server that is starting,
// stopping or refusing connections, rather than of a bad statement.
func isServerGoingAway(n uint16) bool {
	switch n {
	case 1040, // too many connections
		1053,                   // server shutdown in progress
		1077,                   // normal shutdown
		1152,                   // aborted connection
		1927,                   // connection was killed (MariaDB)
		2002, 2003, 2006, 2013: // client-side: cannot connect, gone away, lost
		return true
	}
	return false
}
