// Package devstacktest is the test side of the dev stack: it decides what a
// test does when a component it needs is missing (fails in CI, skips on a
// laptop). It lives apart from devstack so that cmd/local, which links
// devstack, does not link the testing package.
//
// Depends on: devstack.
package devstacktest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
)

// RequireMySQLDSN returns MYSQL_TEST_DSN. Without it the test is skipped on a
// laptop and fails in CI (CI=true), where a missing component is a failure.
func RequireMySQLDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MYSQL_TEST_DSN")
	if dsn == "" {
		Missing(t, "MYSQL_TEST_DSN is not set (this machine: root@tcp(127.0.0.1:3306)/test)")
	}
	return dsn
}

// RequireMariaDB fails in CI, and skips elsewhere, when no private mariadbd
// can be started.
func RequireMariaDB(t testing.TB) {
	t.Helper()
	if !devstack.MariaDBAvailable() {
		Missing(t, "mariadbd and mariadb-install-db are not installed (apt-get install mariadb-server)")
	}
}

// Missing reports a missing component: fatal in CI, a skip elsewhere.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("required in CI: %s", why)
	}
	t.Skip(why)
}

// Prometheus runs the pinned Prometheus (PROMETHEUS_BIN) with config, a
// prometheus.yml's text, on a free loopback port until the test ends, and
// returns its address (host:port). Missing if it is not built.
func Prometheus(t testing.TB, config string) string {
	t.Helper()
	bin := os.Getenv("PROMETHEUS_BIN")
	if _, err := os.Stat(bin); bin == "" || err != nil {
		Missing(t, "PROMETHEUS_BIN is not built (make tools)")
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(config, "$ADDR", addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := devstack.StartTool(ctx, "prometheus", bin, []string{"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr}, addr, "/-/ready", devstack.Output{Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return addr
}
