package promapi_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/devstack/promapi"
)

// TestAgainstPrometheus asks the pinned Prometheus (PROMETHEUS_BIN, which
// the Makefile exports) what the tooling asks: scalars and one-series
// vectors are numbers, NaN included; no series or two are ErrNotOne; a
// query Prometheus refuses is its error; Series lists Prometheus's own.
func TestAgainstPrometheus(t *testing.T) {
	addr := devstacktest.Prometheus(t, "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: self\n    static_configs: [{targets: ['$ADDR']}]\n")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base, c := "http://"+addr, &http.Client{Timeout: 10 * time.Second}

	for expr, want := range map[string]float64{
		"scalar(vector(3))":           3,
		"vector(2)":                   2,
		"sum(vector(1) or vector(4))": 1, // or keeps the left side's one series
		"1 / 0":                       math.Inf(1),
		`label_replace(vector(5), "a", "b", "", "")`: 5,
	} {
		got, err := promapi.Value(ctx, c, base, expr)
		if err != nil || got != want {
			t.Errorf("Value(%s) = %v, %v; want %v", expr, got, err, want)
		}
	}
	if got, err := promapi.Value(ctx, c, base, "0 / 0"); err != nil || !math.IsNaN(got) {
		t.Errorf("Value(0 / 0) = %v, %v; want NaN", got, err)
	}
	for _, expr := range []string{`vector(1) > 2`, `label_replace(vector(1), "a", "b", "", "") or vector(2)`} {
		if _, err := promapi.Value(ctx, c, base, expr); !errors.Is(err, promapi.ErrNotOne) {
			t.Errorf("Value(%s): %v, want ErrNotOne", expr, err)
		}
	}
	if _, err := promapi.Value(ctx, c, base, "sum("); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("Value(sum(): %v, want Prometheus's parse error", err)
	}
	if _, err := promapi.Value(ctx, c, "http://127.0.0.1:1", "vector(1)"); err == nil {
		t.Error("Value against nothing: no error")
	}

	var series []map[string]string
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(series) == 0; time.Sleep(500 * time.Millisecond) {
		if series, err = promapi.Series(ctx, c, base, `up{job="self"}`); err != nil {
			t.Fatal(err)
		}
	}
	if len(series) != 1 || series[0]["instance"] != addr {
		t.Errorf("Series(up) = %v, want Prometheus's own target %s", series, addr)
	}
	if _, err := promapi.Series(ctx, c, base, "{"); err == nil {
		t.Error("Series({): no error")
	}
}
