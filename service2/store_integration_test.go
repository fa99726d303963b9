//go:build integration

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/failready/failready/app/mysqldb"
	"github.com/failready/failready/app/user"
	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing"
)

// testDatabase prepares a fresh database on MYSQL_TEST_DSN with the schema
// file and the least-privileged app user, dropped after the test.
func testDatabase(t *testing.T) *devstack.Database {
	t.Helper()
	dsn := devstacktest.RequireMySQLDSN(t)
	ctx := context.Background()
	db, err := devstack.PrepareDatabase(ctx, "..", dsn, "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}

func appConfig(d *devstack.Database) mysqldb.Config {
	return mysqldb.Config{
		Addr: d.Addr, User: d.User, Password: d.Password, Database: d.Name,
		MaxOpenConns: 10, MaxIdleConns: 10, ConnMaxLifetime: time.Minute, ConnMaxIdleTime: time.Minute,
		DialTimeout: time.Second, IOTimeout: 5 * time.Second, QueryTimeout: 2 * time.Second, PingTimeout: time.Second,
	}
}

func testStore(t testing.TB, c mysqldb.Config, logw io.Writer) *store {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logw, nil))
	db, err := mysqldb.Open(c, logger, tracing.Disabled())
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{})
	t.Cleanup(func() { m.Close(); db.Close() })
	return newStore(db, c.QueryTimeout, logger, m, tracing.Disabled())
}

func TestStore(t *testing.T) {
	s := testStore(t, appConfig(testDatabase(t)), io.Discard)
	ctx := context.Background()

	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 1 || list[0] != (user.User{ID: 1, FirstName: "joe", LastName: "cool"}) {
		t.Fatalf("seed: %v %v", list, err)
	}
	names := []user.New{
		{FirstName: "ann", LastName: "lee"},
		{FirstName: strings.Repeat("é", 30), LastName: strings.Repeat("😀", 30)}, // 30 characters, 4-byte UTF-8
		{FirstName: "Robert'); DROP TABLE users;--", LastName: `"quoted" \ back`},
	}
	for _, n := range names {
		u, err := s.CreateUser(ctx, n, "")
		if err != nil {
			t.Fatalf("create %+v: %v", n, err)
		}
		got, err := s.GetUser(ctx, u.ID)
		if err != nil || got != u || got.FirstName != n.FirstName || got.LastName != n.LastName {
			t.Fatalf("round trip %+v: got %+v, %v", n, got, err)
		}
	}
	if _, err := s.GetUser(ctx, 999999); !errors.Is(err, errNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	list, err = s.ListUsers(ctx)
	if err != nil || len(list) != 4 || list[3].LastName != names[2].LastName {
		t.Fatalf("list after creates: %v %v", list, err)
	}
}

func TestStoreConcurrentInserts(t *testing.T) {
	s := testStore(t, appConfig(testDatabase(t)), io.Discard)
	const workers, each = 20, 10
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				u, err := s.CreateUser(context.Background(), user.New{FirstName: fmt.Sprintf("w%d", w), LastName: fmt.Sprintf("i%d", i)}, "")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[u.ID] {
					errs <- fmt.Errorf("id %d returned twice", u.ID)
				}
				seen[u.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != workers*each+1 {
		t.Fatalf("rows %d (%v), want %d", n, err, workers*each+1)
	}
	if st := s.db.Stats(); st.MaxOpenConnections != 10 || st.OpenConnections > 10 {
		t.Fatalf("pool limits not honoured: %+v", st)
	}
}

// TestAppUserIsLeastPrivileged: the user from 02-app-user.sh can read and
// insert, and nothing else.
func TestAppUserIsLeastPrivileged(t *testing.T) {
	s := testStore(t, appConfig(testDatabase(t)), io.Discard)
	for _, stmt := range []string{
		"DELETE FROM users",
		"UPDATE users SET first_name = 'x'",
		"DROP TABLE users",
		"CREATE TABLE t (id INT)",
		"SELECT * FROM mysql.user",
	} {
		_, err := s.db.Exec(stmt)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || (me.Number != 1142 && me.Number != 1044 && me.Number != 1146) {
			t.Errorf("%s: got %v, want a privilege error", stmt, err)
		}
	}
}

func TestStoreQueryTimeout(t *testing.T) {
	c := appConfig(testDatabase(t))
	c.QueryTimeout = time.Nanosecond
	var logs logtest.Buffer
	s := testStore(t, c, &logs)
	ctx := requestid.NewContext(context.Background(), "rid-timeout")
	if _, err := s.ListUsers(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline", err)
	}
	l := logtest.Find(logs.Lines(t), map[string]any{"msg": "query failed", "op": "list_users"})
	if len(l) != 1 {
		t.Fatalf("query failure line: %s", logs.String())
	}
}

// TestConnectionsKilledUnderneath: MySQL drops every connection of the pool
// (a failover, a proxy reset); the next requests succeed without a restart.
func TestConnectionsKilledUnderneath(t *testing.T) {
	d := testDatabase(t)
	s := testStore(t, appConfig(d), io.Discard)
	ctx := context.Background()
	for range 5 {
		if _, err := s.ListUsers(ctx); err != nil {
			t.Fatal(err)
		}
	}
	root, err := openRoot(devstacktest.RequireMySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rows, err := root.Query("SELECT id FROM information_schema.processlist WHERE user = ?", d.User)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		t.Fatal("the pool holds no connection to kill")
	}
	for _, id := range ids {
		if _, err := root.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := s.ListUsers(ctx); err != nil {
			t.Fatalf("query %d after the kill: %v", i, err)
		}
	}
}

// TestDatabaseGoesAwayAndComesBack runs service2 against a private mariadbd,
// stops it, and starts it again: service2 answers 503 fast and is not ready
// while MySQL is gone, and serves again without a restart once it is back.
func TestDatabaseGoesAwayAndComesBack(t *testing.T) {
	devstacktest.RequireMariaDB(t)
	ctx := context.Background()
	m, err := devstack.StartMariaDB(ctx, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	d, err := devstack.PrepareDatabase(ctx, "..", m.RootDSN(""), "failready", "")
	if err != nil {
		t.Fatal(err)
	}

	base, _, stop := startService2(t, map[string]string{
		"MYSQL_ADDR": d.Addr, "MYSQL_USER": d.User, "MYSQL_PASSWORD": d.Password,
		"MYSQL_DATABASE": d.Name, "DB_DIAL_TIMEOUT": "500ms",
	})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/users") != 200 || get("/readyz") != 200 {
		t.Fatal("not serving before the outage")
	}

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if s := get("/users"); s != 503 {
		t.Fatalf("MySQL down: /users %d, want 503", s)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("503 took %s with MySQL down", el)
	}
	if s := get("/readyz"); s != 503 {
		t.Fatalf("MySQL down: /readyz %d, want 503", s)
	}
	if s := get("/healthz"); s != 200 {
		t.Fatalf("MySQL down: /healthz %d, want 200 (liveness)", s)
	}

	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for get("/users") != 200 {
		if time.Since(back) > 5*time.Second {
			t.Fatal("service2 did not recover within 5s of MySQL's return")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovered %s after MySQL returned", time.Since(back).Round(time.Millisecond))
	if get("/readyz") != 200 {
		t.Fatal("not ready after recovery")
	}
}

func openRoot(dsn string) (*sql.DB, error) { return sql.Open("mysql", dsn) }

// TestIdempotentCreate: a create retried with the same key returns the same
// row and inserts nothing, even when the retries race.
func TestIdempotentCreate(t *testing.T) {
	s := testStore(t, appConfig(testDatabase(t)), io.Discard)
	ctx := context.Background()
	n := user.New{FirstName: "idem", LastName: "potent"}
	first, err := s.CreateUser(ctx, n, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make(chan int64, 10)
	for range 10 {
		wg.Go(func() {
			u, err := s.CreateUser(ctx, n, "key-1")
			if err != nil {
				t.Error(err)
			}
			ids <- u.ID
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		if id != first.ID {
			t.Errorf("retry got id %d, want %d", id, first.ID)
		}
	}
	if _, err := s.CreateUser(ctx, user.New{FirstName: "other", LastName: "body"}, "key-1"); !errors.Is(err, errKeyReused) {
		t.Errorf("key reused with another body: %v", err)
	}
	var rows int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM users WHERE idempotency_key = 'key-1'").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows for key-1 (%v)", rows, err)
	}
	// Without a key, every create is a new row.
	a, _ := s.CreateUser(ctx, n, "")
	b, _ := s.CreateUser(ctx, n, "")
	if a.ID == b.ID || a.ID == 0 {
		t.Fatalf("keyless creates: %d, %d", a.ID, b.ID)
	}
}

// TestCreateRecordsTheWelcomeTask: a create writes its user and its task in
// one transaction: one outbox row per created user, with the request ID;
// a create that fails writes neither; a retried create (same idempotency
// key) writes no second task.
func TestCreateRecordsTheWelcomeTask(t *testing.T) {
	d := testDatabase(t)
	s := testStore(t, appConfig(d), io.Discard)
	woken := 0
	s.taskRecorded = func() { woken++ }
	ctx := requestid.NewContext(context.Background(), "rid-task")
	u, err := s.CreateUser(ctx, user.New{FirstName: "ada", LastName: "lovelace"}, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, user.New{FirstName: "ada", LastName: "lovelace"}, "key-1"); err != nil { // the retry
		t.Fatal(err)
	}
	// Too long for the column: MySQL refuses the user, and the task goes with it.
	if _, err := s.CreateUser(ctx, user.New{FirstName: strings.Repeat("x", 31), LastName: "y"}, ""); err == nil {
		t.Fatal("a 31-character first name was stored")
	}
	root, err := sql.Open("mysql", devstacktest.RequireMySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rows, err := root.Query("SELECT topic, payload, headers FROM `" + d.Name + "`.outbox")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var topic, payload, headers string
		if err := rows.Scan(&topic, &payload, &headers); err != nil {
			t.Fatal(err)
		}
		got = append(got, topic+" "+payload+" "+headers)
	}
	want := fmt.Sprintf(`tasks.welcome {"user_id":%d,"first_name":"ada"}`, u.ID)
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], `"X-Request-Id":"rid-task"`) || !strings.Contains(got[0], `"Task-Created":"`) {
		t.Errorf("outbox rows %q; want one: %s with the request ID and creation time", got, want)
	}
	if woken != 1 {
		t.Errorf("the relay was woken %d times, want once (for the one task)", woken)
	}
}

// BenchmarkCreateUser (make bench-worker): what recording the welcome task
// in the outbox costs a create, against MariaDB: the store's CreateUser
// (a transaction: the user, the outbox row, the commit) beside the plain
// insert it replaced, in the same run (benchratio reports outbox / plain).
// No relay runs: the cost to the request is the write.
func BenchmarkCreateUser(b *testing.B) {
	d, err := devstack.PrepareDatabase(context.Background(), "..", devstacktest.RequireMySQLDSN(b), "", "")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Drop(context.Background())
	s := testStore(b, appConfig(d), io.Discard)
	ctx := requestid.NewContext(context.Background(), "bench")
	n := 0 // every create has a key of its own, across rounds
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			n++
			if _, err := s.db.ExecContext(ctx, "INSERT INTO users (first_name, last_name, idempotency_key) VALUES (?, ?, ?)",
				"b", "plain", fmt.Sprintf("plain-%d", n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("outbox", func(b *testing.B) {
		for b.Loop() {
			n++
			if _, err := s.CreateUser(ctx, user.New{FirstName: "b", LastName: "outbox"}, fmt.Sprintf("outbox-%d", n)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
