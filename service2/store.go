// The users store: MySQL through one pooled *sql.DB, parameterised
// statements only, each bounded by DB_QUERY_TIMEOUT and traced (the talk's
// service2-db span around otelsql's statement spans) and timed; driver
// errors are classified here, once, into what handlers.go maps to HTTP
// (MySQL away: 503; a deadline: 504; no row: 404; only a real fault: 500).
// An idempotent create: the Idempotency-Key is a unique column, so a retried
// POST finds the row its first attempt made. A create records the user's
// welcome task in the outbox in the same transaction (tasks.go).

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
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/outbox"
	"github.com/failready/failready/internal/tracing"
)

// Store errors the handlers map to HTTP.
var (
	errNotFound    = errors.New("user not found")
	errUnavailable = errors.New("database unavailable")
	errKeyReused   = errors.New("idempotency key reused with a different body")
)

// store is the users table. Every statement is parameterised, and runs
// through run: bounded by queryTimeout on top of the caller's context,
// measured, and logged with the request ID when it fails.
type store struct {
	db           *sql.DB
	queryTimeout time.Duration
	logger       *slog.Logger
	metrics      *metrics.Client
	tags         *metrics.Tags[queryKey]
	errTags      *metrics.Tags[string]
	tracer       trace.Tracer
	propagator   propagation.TextMapPropagator
	// taskRecorded is called after a task is committed (the outbox relay's
	// Wake); a no-op until the relay runs.
	taskRecorded func()
}

type queryKey struct{ op, outcome string }

func newStore(db *sql.DB, queryTimeout time.Duration, logger *slog.Logger, m *metrics.Client, tr tracing.Tracing) *store {
	return &store{
		db: db, queryTimeout: queryTimeout, logger: logger, metrics: m, tracer: tr.Tracer("failready/service2"),
		propagator: tr.Propagator, taskRecorded: func() {},
		tags: metrics.NewTags(100, func(k queryKey) []string {
			return []string{"operation:" + k.op, "outcome:" + k.outcome}
		}),
		errTags: metrics.NewTags(100, func(op string) []string { return []string{"operation:" + op} }),
	}
}

// listLimit bounds GET /users: the demo has no paging, so it must not dump a
// table that load tests have grown.
const listLimit = 100

func (s *store) ListUsers(ctx context.Context) ([]user.User, error) {
	users := []user.User{}
	err := s.eachUser(ctx, "list_users", listLimit, func(u user.User) error {
		users = append(users, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

func (s *store) GetUser(ctx context.Context, id int64) (user.User, error) {
	var u user.User
	err := s.run(ctx, "get_user", func(ctx context.Context) error {
		err := s.db.QueryRowContext(ctx,
			"SELECT id, first_name, last_name FROM users WHERE id = ?", id).
			Scan(&u.ID, &u.FirstName, &u.LastName)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		return err
	})
	return u, err
}

// ExportUsers calls each for every user, in id order, up to limit.
func (s *store) ExportUsers(ctx context.Context, limit int, each func(user.User) error) error {
	return s.eachUser(ctx, "export_users", limit, each)
}

// eachUser runs the one query that reads users in id order, up to limit, as
// statement op, and calls each for every row. An error from each stops the
// scan and is returned as it is: it is not the database's failure.
func (s *store) eachUser(ctx context.Context, op string, limit int, each func(user.User) error) error {
	var eachErr error
	err := s.run(ctx, op, func(ctx context.Context) error {
		rows, err := s.db.QueryContext(ctx,
			"SELECT id, first_name, last_name FROM users ORDER BY id LIMIT ?", limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u user.User
			if err := rows.Scan(&u.ID, &u.FirstName, &u.LastName); err != nil {
				return err
			}
			if eachErr = each(u); eachErr != nil {
				return nil
			}
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	return eachErr
}

// CreateUser inserts a user and records its welcome task in the outbox,
// in one transaction: a created user always gets its task, and a task
// never exists without its user. With an idempotency key, a second create
// with the same key returns the first one's row (and errKeyReused when the
// names differ) instead of inserting again, and records no second task:
// that is what makes a retried POST safe.
func (s *store) CreateUser(ctx context.Context, n user.New, key string) (user.User, error) {
	u := user.User{FirstName: n.FirstName, LastName: n.LastName}
	var keyArg any // NULL without a key
	if key != "" {
		keyArg = key
	}
	created := false
	err := s.run(ctx, "create_user", func(ctx context.Context) error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }() // after a commit: a no-op
		res, err := tx.ExecContext(ctx,
			"INSERT INTO users (first_name, last_name, idempotency_key) VALUES (?, ?, ?)", n.FirstName, n.LastName, keyArg)
		var me *mysql.MySQLError
		if key != "" && errors.As(err, &me) && me.Number == 1062 { // duplicate key: a retry
			_ = tx.Rollback() // before the read, so that it holds no lock of its own
			u, err = s.firstCreate(ctx, n, key)
			return err
		}
		if err != nil {
			return err
		}
		if u.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		body, headers, err := welcomeTask(ctx, s.propagator, u)
		if err != nil {
			return err
		}
		if _, err := outbox.Add(ctx, tx, tasks.WelcomeSubject, body, headers); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		created = true
		return nil
	})
	if created {
		s.taskRecorded() // the relay publishes it now, not at its next pass
	}
	return u, err
}

// firstCreate answers a create retried with its idempotency key: the user
// the first create with that key made, and errKeyReused when that one had
// other names (the key reused for another body).
func (s *store) firstCreate(ctx context.Context, n user.New, key string) (user.User, error) {
	var first user.User
	if err := s.db.QueryRowContext(ctx, "SELECT id, first_name, last_name FROM users WHERE idempotency_key = ?", key).
		Scan(&first.ID, &first.FirstName, &first.LastName); err != nil {
		return user.User{}, err
	}
	if first.FirstName != n.FirstName || first.LastName != n.LastName {
		return first, errKeyReused
	}
	return first, nil
}

// run runs one statement op under the query deadline, records its duration
// and outcome (errNotFound is a success: the query worked), and logs and
// classifies a failure.
func (s *store) run(ctx context.Context, op string, stmt func(context.Context) error) error {
	// The talk's manual span; otelsql's statement spans nest inside it.
	ctx, span := s.tracer.Start(ctx, "service2-db", trace.WithAttributes(semconv.DBOperationName(op)))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	start := time.Now()
	err := stmt(ctx)
	outcome := "ok"
	if err != nil && !errors.Is(err, errNotFound) && !errors.Is(err, errKeyReused) {
		err = classify(err)
		outcome = "error"
		if errors.Is(err, context.DeadlineExceeded) {
			outcome = "timeout"
		}
		s.metrics.Count(metrics.DBQueryErrors, 1, s.errTags.Get(op))
		tracing.Fail(span, err)
		s.logger.ErrorContext(ctx, "query failed", "op", op, "error", err.Error())
	}
	s.metrics.Timing(metrics.DBQueryDuration, time.Since(start), s.tags.Get(queryKey{op, outcome}))
	return err
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
