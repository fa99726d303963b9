// Package outbox is the transactional outbox. A task is written as a row
// in the same transaction as the change that causes it, so a created user
// always gets its task and a task never exists without its user; a relay
// publishes the pending rows to the broker afterwards and marks each sent.
//
// The broker deduplicates by the row's ID (JetStream's Nats-Msg-Id), so a
// relay that dies between publishing a row and marking it costs a harmless
// second publish, never a lost task. Several relays (one per replica)
// share the rows with SELECT ... FOR UPDATE SKIP LOCKED (MySQL 8, MariaDB
// 10.6 and later): a row is published by one of them at a time. With the
// broker down the rows wait, and the writes that make them go on.
//
// The table is Schema: create it beside the tables whose changes make
// tasks, in the same database.
//
// Depends on: standard library (database/sql; the broker is a function),
// internal/outage (a broker or database away is logged once, not per pass).
//
// Tests use: github.com/go-sql-driver/mysql (against a real server:
// MYSQL_TEST_DSN, build tag integration).
package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/failready/failready/internal/outage"
)

// Schema creates the outbox table (MySQL 8 or MariaDB 10.6 and later): the
// task's topic, payload and headers (JSON), when it was written, and when it
// was sent (NULL until then; the index finds the pending rows in order).
const Schema = `CREATE TABLE IF NOT EXISTS outbox (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  topic      VARCHAR(64)    NOT NULL,
  payload    VARBINARY(4096) NOT NULL,
  headers    VARBINARY(4096) NOT NULL,
  created_at DATETIME(6)    NOT NULL,
  sent_at    DATETIME(6)    NULL,
  KEY outbox_pending (sent_at, id)
) ENGINE = InnoDB`

// Row is a task as the relay hands it to the broker.
type Row struct {
	ID      int64
	Topic   string
	Payload []byte
	Headers map[string]string
}

// Add records a task in tx: it commits or rolls back with the change that
// caused it. It returns the row's ID.
func Add(ctx context.Context, tx *sql.Tx, topic string, payload []byte, headers map[string]string) (int64, error) {
	h, err := json.Marshal(headers)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx,
		"INSERT INTO outbox (topic, payload, headers, created_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))", topic, payload, h)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	return res.LastInsertId()
}

// Publish sends one row to the broker and returns once the broker has it.
type Publish func(ctx context.Context, r Row) error

// Stats is what the relay reports after each pass. (The backlog is a
// query of its own, Backlog: sample it on a timer, not after every pass,
// which runs once per committed task.)
type Stats struct {
	Published int  // rows published in the pass
	Failed    bool // the pass stopped on a failed publish
}

// Relay publishes pending rows, oldest first.
type Relay struct {
	db       *sql.DB
	publish  Publish
	opts     Options
	wake     chan struct{}
	lastTidy time.Time
	stalled  *outage.Log // failing passes: logged once, once a minute, and when they flow again
}

// Options of a relay; zero values take the defaults.
type Options struct {
	Batch    int           // rows per transaction: 100
	Interval time.Duration // the pass when nothing wakes it: 1 s (rows of other replicas, or after a failure)
	KeepSent time.Duration // sent rows are deleted after: 24 h
	Logger   *slog.Logger  // failures, as an outage: once, once a minute, and when rows flow again (discarded when nil)
	Observe  func(Stats)   // after every pass (metrics)
}

// NewRelay returns a relay of the outbox table in db.
func NewRelay(db *sql.DB, publish Publish, o Options) *Relay {
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.KeepSent <= 0 {
		o.KeepSent = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{db: db, publish: publish, opts: o, wake: make(chan struct{}, 1),
		stalled: outage.New("outbox relay", outage.Options{Logger: o.Logger})}
}

// Wake asks for a pass now (call it after committing a task): the task
// leaves within milliseconds instead of at the next interval. It never
// blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends: a pass when woken or every Interval, passes
// back to back while full batches go out.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		for {
			n, err := r.Pass(ctx)
			if err != nil || n < r.opts.Batch || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// Pass publishes up to Batch pending rows in one transaction, marks those
// published as sent and commits; it stops at the first failed publish
// (that row and the ones after it wait for the next pass). It returns how
// many it published.
func (r *Relay) Pass(ctx context.Context) (published int, err error) {
	defer func() {
		if r.opts.Observe != nil {
			r.opts.Observe(Stats{Published: published, Failed: err != nil})
		}
		if ctx.Err() == nil { // a stop is not an outage
			r.stalled.Report(ctx, err) // failed: the rows wait for a later pass
		}
	}()
	// READ COMMITTED: the locking read takes the rows it returns and no
	// gap after them (REPEATABLE READ's next-key locks would hold up every
	// create's insert into the outbox while a publish waits on the broker).
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // after a commit: a no-op
	rows, err := tx.QueryContext(ctx,
		"SELECT id, topic, payload, headers FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED", r.opts.Batch)
	if err != nil {
		return 0, err
	}
	var batch []Row
	for rows.Next() {
		var row Row
		var h []byte
		if err := rows.Scan(&row.ID, &row.Topic, &row.Payload, &h); err != nil {
			rows.Close()
			return 0, err
		}
		if err := json.Unmarshal(h, &row.Headers); err != nil {
			row.Headers = nil // a row is published even if its headers are damaged: its task matters more
		}
		batch = append(batch, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var sent []any
	var pubErr error
	for _, row := range batch {
		if pubErr = r.publish(ctx, row); pubErr != nil {
			break
		}
		sent = append(sent, row.ID)
	}
	if len(sent) > 0 {
		q := "UPDATE outbox SET sent_at = UTC_TIMESTAMP(6) WHERE id IN (?" + strings.Repeat(", ?", len(sent)-1) + ")"
		if _, err := tx.ExecContext(ctx, q, sent...); err != nil {
			return 0, err // not marked: published again next pass, and deduplicated by the broker
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	r.tidy(ctx)
	return len(sent), pubErr
}

// Backlog counts the rows not yet sent and the age of the oldest.
func (r *Relay) Backlog(ctx context.Context) (int, time.Duration, error) {
	var n int
	var ageUS sql.NullInt64
	err := r.db.QueryRowContext(ctx,
		"SELECT COUNT(*), TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) FROM outbox WHERE sent_at IS NULL").Scan(&n, &ageUS)
	return n, time.Duration(ageUS.Int64) * time.Microsecond, err
}

// tidy deletes sent rows older than KeepSent, at most once a minute and
// 1 000 at a time.
func (r *Relay) tidy(ctx context.Context) {
	if time.Since(r.lastTidy) < time.Minute {
		return
	}
	r.lastTidy = time.Now()
	_, err := r.db.ExecContext(ctx,
		"DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND LIMIT 1000", int64(r.opts.KeepSent.Seconds()))
	if err != nil && !errors.Is(err, context.Canceled) {
		r.opts.Logger.WarnContext(ctx, "outbox relay: tidying sent rows failed", "error", err.Error())
	}
}
