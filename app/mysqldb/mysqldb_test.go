package mysqldb

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/internal/envconfig"
	"github.com/failready/failready/internal/tracing"
)

// TestReadAndOpen: each service's defaults apply when nothing is set, a
// set variable wins over them, a bad one is reported by name, and Open
// gives the pool its limit without connecting.
func TestReadAndOpen(t *testing.T) {
	worker := Defaults{User: "w", Password: "p", MaxOpenConns: 10, MaxIdleConns: 10, QueryTimeout: 2 * time.Second}
	env := envconfig.New(func(string) string { return "" })
	c := Read(env, worker)
	if env.Err() != nil || c.User != "w" || c.MaxOpenConns != 10 || c.QueryTimeout != 2*time.Second || c.DialTimeout != 2*time.Second {
		t.Errorf("defaults: %+v, %v", c, env.Err())
	}
	set := map[string]string{"DB_MAX_OPEN_CONNS": "3", "DB_QUERY_TIMEOUT": "250ms", "MYSQL_ADDR": "db:3307"}
	env = envconfig.New(func(k string) string { return set[k] })
	c = Read(env, worker)
	if env.Err() != nil || c.MaxOpenConns != 3 || c.QueryTimeout != 250*time.Millisecond || c.Addr != "db:3307" {
		t.Errorf("set: %+v, %v", c, env.Err())
	}
	db, err := Open(c, slog.New(slog.NewJSONHandler(io.Discard, nil)), tracing.Disabled())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("pool limit %d, want 3", got)
	}
	env = envconfig.New(func(k string) string { return map[string]string{"DB_IO_TIMEOUT": "soon"}[k] })
	Read(env, worker)
	if err := env.Err(); err == nil || !strings.Contains(err.Error(), "DB_IO_TIMEOUT") {
		t.Errorf("a bad DB_IO_TIMEOUT: %v", err)
	}
}
