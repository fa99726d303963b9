package main

import (
	"net/http"
	"testing"

	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/metrics/statsdtest"
)

// TestMetricsWithMySQLDown: service2 measures its failed queries and its
// pool even when MySQL is unreachable (the real store, against a closed port).
func TestMetricsWithMySQLDown(t *testing.T) {
	rcv := statsdtest.Listen(t)
	base, _, stop := startService2(t, map[string]string{
		"MYSQL_ADDR": freeAddr(t), "DB_DIAL_TIMEOUT": "200ms", "STATSD_ADDR": rcv.Addr(),
	})
	for _, p := range []string{"/users", "/users/1", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rcv.Settle()

	q := rcv.Named(metrics.DBQueryDuration)
	if len(q) < 2 {
		t.Fatalf("query lines: %v", q)
	}
	ops := map[string]bool{}
	for _, l := range q {
		if l.Tags["outcome"] != "error" || l.Tags["service"] != "service2" {
			t.Errorf("query line %s", l.Raw)
		}
		ops[l.Tags["operation"]] = true
	}
	if !ops["list_users"] || !ops["get_user"] {
		t.Errorf("operations %v", ops)
	}
	var errs float64
	for _, l := range rcv.Named(metrics.DBQueryErrors) {
		errs += l.Value
	}
	if errs < 2 {
		t.Errorf("query errors counted: %v; lines %v", errs, rcv.Lines())
	}
	for _, name := range []string{metrics.DBPoolOpen, metrics.DBPoolInUse, metrics.DBPoolIdle, metrics.DBPoolMaxOpen, metrics.DBPoolWaitDuration} {
		if len(rcv.Named(name)) == 0 {
			t.Errorf("no %s", name)
		}
	}
	if mo := rcv.Named(metrics.DBPoolMaxOpen); len(mo) > 0 && mo[0].Value != 20 {
		t.Errorf("max open %v, want the default 20", mo[0].Value)
	}
	st := map[string]bool{}
	for _, l := range rcv.Named(metrics.ServerRequestDuration) {
		st[l.Tags["route"]+" "+l.Tags["status"]] = true
	}
	if !st["/users 503"] || !st["/users/{id} 503"] || st["/readyz 503"] {
		t.Errorf("server lines: %v (probes must not be measured)", st)
	}
}
