package main

import (
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/metrics/statsdtest"
)

// labels returns the sorted tag keys of a line.
func labels(l statsdtest.Line) []string {
	var out []string
	for k := range l.Tags {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestMetricsOfARequest: what service1 sends for its requests and its calls
// to service2, read off a real UDP socket.
func TestMetricsOfARequest(t *testing.T) {
	rcv := statsdtest.Listen(t)
	s2 := httptest.NewServer(&fakeService2{})
	defer s2.Close()
	base, _, stop := startService1(t, s2.URL, map[string]string{"STATSD_ADDR": rcv.Addr()})

	const n = 5
	for range n {
		do(t, "GET", base+"/users/1", "", "", nil)
	}
	do(t, "GET", base+"/users/77", "", "", nil) // service2 answers 404: a good answer
	do(t, "GET", base+"/honeypot", "", "", nil)
	do(t, "GET", base+"/healthz", "", "", nil) // not measured
	if err := stop(); err != nil {             // flushes
		t.Fatal(err)
	}
	rcv.Settle()

	catalog := map[string]metrics.Metric{}
	for _, m := range metrics.Catalog() {
		catalog[m.Statsd] = m
	}
	for _, l := range rcv.Lines() {
		m, ok := catalog[l.Name]
		if !ok {
			t.Errorf("%s is not in the catalog", l.Raw)
			continue
		}
		if l.Type != m.StatsdType {
			t.Errorf("%s: type %s, catalog says %s", l.Name, l.Type, m.StatsdType)
		}
		want := slices.Sorted(slices.Values(m.Labels))
		if got := labels(l); !slices.Equal(got, want) {
			t.Errorf("%s: labels %v, catalog says %v", l.Raw, got, want)
		}
		for _, v := range l.Tags {
			if strings.Contains(v, "/users/1") || strings.Contains(v, "/users/77") {
				t.Errorf("raw path in %s", l.Raw)
			}
		}
	}

	server := rcv.Named(metrics.ServerRequestDuration)
	client := rcv.Named(metrics.ClientRequestDuration)
	// At most 3 statsd calls on a request's hot path: here 2 (server + client).
	if len(server) != n+2 || len(client) != n+1 {
		t.Fatalf("server lines %d (want %d), client lines %d (want %d)", len(server), n+2, len(client), n+1)
	}
	byStatus := map[string]int{}
	for _, l := range server {
		if l.Tags["service"] != "service1" || l.Tags["route"] == "/healthz" {
			t.Errorf("server line %s", l.Raw)
		}
		byStatus[l.Tags["route"]+" "+l.Tags["status"]]++
	}
	if byStatus["/users/{id} 200"] != n || byStatus["/users/{id} 404"] != 1 || byStatus["/honeypot 500"] != 1 {
		t.Errorf("server lines by route and status: %v", byStatus)
	}
	for _, l := range client {
		if l.Tags["peer"] != "service2" || l.Tags["route"] != "/users/{id}" || l.Tags["outcome"] != "ok" {
			t.Errorf("client line %s", l.Raw)
		}
	}
	if p := rcv.Named(metrics.ServerPanics); len(p) != 1 || p[0].Tags["route"] != "/honeypot" {
		t.Errorf("panic counter: %v", p)
	}
	if len(rcv.Named(metrics.BuildInfo)) == 0 || len(rcv.Named(metrics.RuntimeGoroutines)) == 0 {
		t.Error("no build info or runtime gauges")
	}
}

func TestClientOutcomes(t *testing.T) {
	rcv := statsdtest.Listen(t)
	slow := httptest.NewServer(&fakeService2{delay: 2 * time.Second})
	defer slow.Close()
	failing := httptest.NewServer(&fakeService2{fail: 500})
	defer failing.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()

	for url, want := range map[string]string{slow.URL: "timeout", failing.URL: "error", dead: "error"} {
		base, _, stop := startService1(t, url, map[string]string{"STATSD_ADDR": rcv.Addr(), "SERVICE2_TIMEOUT": "100ms"})
		before := len(rcv.Named(metrics.ClientRequestDuration))
		do(t, "GET", base+"/", "", "", nil)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		lines := rcv.WaitFor(t, metrics.ClientRequestDuration, before+1, 2*time.Second)
		l := lines[len(lines)-1]
		if l.Tags["outcome"] != want || l.Tags["route"] != "/users" {
			t.Errorf("%s: %s, want outcome %s", url, l.Raw, want)
		}
	}
}
