package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/failready/failready/internal/outbox"
)

// TestRelayWithTheDatabaseAway: with MySQL unreachable, a pass publishes
// nothing and says why (the rows wait, nothing is lost); Run keeps trying
// on its interval, observed each time, and stops with its context. (The
// rest of the relay runs against a real server: the integration tests.)
func TestRelayWithTheDatabaseAway(t *testing.T) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.Timeout = "tcp", "127.0.0.1:1", time.Second // nothing listens on port 1
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var published, passes atomic.Int32
	var logs bytes.Buffer
	r := outbox.NewRelay(db, func(context.Context, outbox.Row) error { published.Add(1); return nil }, outbox.Options{
		Interval: 20 * time.Millisecond,
		Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
		Observe: func(s outbox.Stats) {
			if !s.Failed || s.Published != 0 {
				t.Errorf("a pass with the database away: %+v", s)
			}
			passes.Add(1)
		},
	})
	if n, err := r.Pass(context.Background()); n != 0 || err == nil {
		t.Fatalf("pass: %d, %v; want nothing published and the error", n, err)
	}
	if !strings.Contains(logs.String(), `"msg":"dependency down","dependency":"outbox relay"`) {
		t.Errorf("the failed pass was not logged: %s", logs.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
	if passes.Load() < 3 || published.Load() != 0 {
		t.Errorf("%d passes, %d published; want Run to keep trying on its interval and publish nothing", passes.Load(), published.Load())
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d lines over %d failed passes, want the one down line (an outage is logged once): %s", n, passes.Load(), logs.String())
	}
}
