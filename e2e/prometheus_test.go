//go:build e2e

package e2e

// Prometheus's HTTP API, as the tests query it (through devstack/promapi,
// which cmd/chaos's probes use too): one query, its single value, the
// series of a name. A query Prometheus refuses fails the test.

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/failready/failready/devstack/promapi"
)

var promClient = &http.Client{Timeout: 30 * time.Second}

func promQuery(t *testing.T, base, expr string) promapi.Result {
	t.Helper()
	r, err := promapi.Query(context.Background(), promClient, base, expr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// promSeries returns the label sets of the series named name.
func promSeries(t *testing.T, base, name string) []map[string]string {
	t.Helper()
	s, err := promapi.Series(context.Background(), promClient, base, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// promValue is a query's single value (0 and false when it has no series,
// or several).
func promValue(t *testing.T, base, expr string) (float64, bool) {
	t.Helper()
	v, err := promapi.Value(context.Background(), promClient, base, expr)
	if errors.Is(err, promapi.ErrNotOne) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}
