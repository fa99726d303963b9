//go:build integration

package outbox_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/failready/failready/internal/outbox"
)

// appDB is a fresh database on the server MYSQL_TEST_DSN names (skipped
// without it, a failure in CI), holding outbox.Schema and a users table for
// the changes that make tasks; dropped when the test ends.
func appDB(t *testing.T) *sql.DB {
	t.Helper()
	dsn := os.Getenv("MYSQL_TEST_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("required in CI: MYSQL_TEST_DSN")
		}
		t.Skip("MYSQL_TEST_DSN is not set")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := "outbox_" + rand.Text()[:12]
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE " + name) })
	cfg.DBName = name
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, ddl := range []string{outbox.Schema, "CREATE TABLE users (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(64), last_name VARCHAR(64))"} {
		if _, err := db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func pending(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAddIsPartOfTheTransaction: a task rolled back with its user is gone
// with it; committed, it is there, with its headers.
func TestAddIsPartOfTheTransaction(t *testing.T) {
	db := appDB(t)
	ctx := context.Background()
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO users (first_name, last_name) VALUES ('ada', 'lovelace')"); err != nil {
			t.Fatal(err)
		}
		if _, err := outbox.Add(ctx, tx, "tasks.welcome", []byte(`{"user_id":2}`), map[string]string{"X-Request-Id": "r1"}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows []outbox.Row
	r := outbox.NewRelay(db, func(_ context.Context, row outbox.Row) error { rows = append(rows, row); return nil }, outbox.Options{})
	if n, err := r.Pass(ctx); n != 1 || err != nil {
		t.Fatalf("pass: %d, %v; want the committed task only", n, err)
	}
	if rows[0].Topic != "tasks.welcome" || string(rows[0].Payload) != `{"user_id":2}` || rows[0].Headers["X-Request-Id"] != "r1" {
		t.Errorf("row %+v", rows[0])
	}
}

// TestRelaysNeverPublishARowTwice: four relays (four replicas of service2)
// drain 600 rows at once; each row is published exactly once, and all are
// marked sent.
func TestRelaysNeverPublishARowTwice(t *testing.T) {
	db := appDB(t)
	ctx := context.Background()
	const n = 600
	for i := 0; i < n; i += 100 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 100 {
			if _, err := outbox.Add(ctx, tx, "tasks.welcome", fmt.Appendf(nil, `{"user_id":%d}`, i+j+1), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	publish := func(_ context.Context, row outbox.Row) error {
		time.Sleep(100 * time.Microsecond) // a broker's round trip, so that the relays overlap
		mu.Lock()
		seen[row.ID]++
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	passes := make([]int, 4)
	for i := range passes {
		wg.Go(func() {
			r := outbox.NewRelay(db, publish, outbox.Options{Batch: 25})
			for {
				got, err := r.Pass(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if got == 0 {
					return
				}
				passes[i]++
			}
		})
	}
	wg.Wait()
	twice := 0
	for _, c := range seen {
		if c > 1 {
			twice++
		}
	}
	if len(seen) != n || twice != 0 || pending(t, db) != 0 {
		t.Errorf("%d rows published, %d of them more than once, %d pending; want %d once each", len(seen), twice, pending(t, db), n)
	}
	busy := 0
	for _, p := range passes {
		if p > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("passes per relay %v: the relays did not share the work", passes)
	}
	t.Logf("passes per relay: %v", passes)
}

// TestRelayStopsAtAFailedPublish: the broker fails on the third row; the
// two before it are sent, the rest wait, the backlog says so, and the next
// pass sends them.
func TestRelayStopsAtAFailedPublish(t *testing.T) {
	db := appDB(t)
	ctx := context.Background()
	tx, _ := db.BeginTx(ctx, nil)
	for i := range 5 {
		if _, err := outbox.Add(ctx, tx, "tasks.welcome", fmt.Appendf(nil, `{"user_id":%d}`, i+1), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	down := errors.New("broker down")
	calls := 0
	var stats []outbox.Stats
	r := outbox.NewRelay(db, func(context.Context, outbox.Row) error {
		if calls++; calls == 3 {
			return down
		}
		return nil
	}, outbox.Options{Observe: func(s outbox.Stats) { stats = append(stats, s) }})
	time.Sleep(20 * time.Millisecond)
	if got, err := r.Pass(ctx); got != 2 || !errors.Is(err, down) {
		t.Fatalf("first pass: %d, %v; want 2 and the broker's error", got, err)
	}
	backlog, oldest, err := r.Backlog(ctx)
	if s := stats[0]; s.Published != 2 || !s.Failed || err != nil || backlog != 3 || oldest < 10*time.Millisecond || oldest > time.Minute {
		t.Errorf("after the failure: stats %+v, backlog %d, oldest %v, %v", s, backlog, oldest, err)
	}
	if got, err := r.Pass(ctx); got != 3 || err != nil {
		t.Fatalf("second pass: %d, %v; want the 3 left", got, err)
	}
	if backlog, oldest, err := r.Backlog(ctx); stats[1].Published != 3 || stats[1].Failed || backlog != 0 || oldest != 0 || err != nil {
		t.Errorf("drained: stats %+v, backlog %d, oldest %v, %v", stats[1], backlog, oldest, err)
	}
}

// TestRunWakesAndStops: Run publishes a committed task when woken, well
// before its interval, and returns when its context ends.
func TestRunWakesAndStops(t *testing.T) {
	db := appDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan time.Time, 10)
	r := outbox.NewRelay(db, func(context.Context, outbox.Row) error { got <- time.Now(); return nil }, outbox.Options{Interval: time.Hour})
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	time.Sleep(100 * time.Millisecond) // its first pass, on an empty table
	tx, _ := db.BeginTx(ctx, nil)
	if _, err := outbox.Add(ctx, tx, "tasks.welcome", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	r.Wake()
	select {
	case at := <-got:
		t.Logf("published %v after the commit", at.Sub(committed))
	case <-time.After(10 * time.Second):
		t.Fatal("not published within 10 s of Wake (the interval is an hour)")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of its context's end")
	}
}

// TestSlowBrokerHoldsUpNoWrite: while a pass waits on a slow broker, a new
// task is written at once: the relay locks the rows it took, not the gap
// after them where new rows go.
func TestSlowBrokerHoldsUpNoWrite(t *testing.T) {
	db := appDB(t)
	ctx := context.Background()
	add := func() time.Duration {
		start := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := outbox.Add(ctx, tx, "tasks.welcome", []byte(`{}`), nil); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	add()
	publishing := make(chan struct{})
	r := outbox.NewRelay(db, func(context.Context, outbox.Row) error {
		close(publishing)
		time.Sleep(2 * time.Second) // a broker that takes its time
		return nil
	}, outbox.Options{}) // a batch larger than the backlog: the read goes past the last row
	passed := make(chan struct{})
	go func() { _, _ = r.Pass(ctx); close(passed) }()
	<-publishing
	if took := add(); took > time.Second {
		t.Errorf("a task written during a slow publish took %v: held up by the relay's locks", took)
	}
	<-passed
}
