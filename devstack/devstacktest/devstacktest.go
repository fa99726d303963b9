// Package devstacktest is the test side of the dev stack: it decides what a
// test does when a component it needs is missing (fails in CI, skips on a
// laptop). It lives apart from devstack so that cmd/local, which links
// devstack, does not link the testing package.
//
// Depends on: devstack.
package devstacktest

import (
	"os"
	"testing"

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
