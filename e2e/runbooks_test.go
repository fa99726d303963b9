//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/promapi"
	"github.com/failready/failready/devstack/runbook"
	"github.com/failready/failready/internal/requestid"
)

// TestRunbooks: every query of every runbook (docs/runbooks) returns data
// during the fault its page names, asked of the real Prometheus, the Loki
// stand-in and Jaeger, with the whole stack running: the game day's faults
// through toxiproxy (service2 away or slow, NATS away), a poison task, and
// a vendor that refuses the data (the collector's exports failing).
func TestRunbooks(t *testing.T) {
	pages, err := runbook.Read(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	// The vendor refuses everything, as with a wrong key (TelemetryDropping's
	// fault, from the start): the collector drops what it refuses, while
	// Jaeger and Loki take everything.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "invalid API key", http.StatusForbidden)
	}))
	defer refusing.Close()
	st, _ := startStackWith(t, devstack.Options{
		Telemetry: tools(t, "STATSD_EXPORTER_BIN", "PROMETHEUS_BIN", "OTELCOL_BIN", "JAEGER_BIN", "NATS_SERVER_BIN"),
		Loki:      devstack.LokiOptions{Addr: "127.0.0.1:0"},
		Chaos:     devstack.ChaosOptions{Enabled: true},
		NATS:      devstack.NATSOptions{Workers: 1},
		Collector: devstack.CollectorOptions{VendorEndpoint: refusing.URL},
		Env: map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"},
			"worker": {"TASK_LATENCY=10ms"}},
	})
	// Some history first: users created and welcomed (the freshness
	// histogram has observations), pages read.
	if s := createUsers(t, st, "e2e-runbook-warm", 20, 20*time.Millisecond); s[201] != 20 {
		t.Fatalf("warm-up creates: %v", s)
	}
	exactly(t, st, 20, 60*time.Second)

	faults := map[string]struct {
		in, out func(t *testing.T)
		traffic func(i int) // one request of the fault's traffic
	}{
		"service2-down": {
			in:      func(t *testing.T) { setEnabled(t, st.Chaos.Service2, false) },
			out:     func(t *testing.T) { resetChaos(t, st) },
			traffic: func(i int) { _, _ = send("GET", st.Service1.URL()+"/", "", nil) },
		},
		"service2-latency": {
			in: func(t *testing.T) {
				if _, err := st.Chaos.Service2.AddToxic("latency", "latency", "downstream", 1, toxiclient.Attributes{"latency": 2000}); err != nil {
					t.Fatal(err)
				}
			},
			out:     func(t *testing.T) { resetChaos(t, st) },
			traffic: func(i int) { _, _ = send("GET", st.Service1.URL()+"/users/1", "", nil) },
		},
		"nats-down": {
			in: func(t *testing.T) {
				setEnabled(t, st.Chaos.NATS, false)
				setEnabled(t, st.Chaos.WorkerNATS, false)
			},
			out: func(t *testing.T) { resetChaos(t, st) },
			traffic: func(i int) {
				_, _ = send("POST", st.Service1.URL()+"/users", fmt.Sprintf(`{"first_name":"r%d","last_name":"runbook"}`, i),
					map[string]string{"Content-Type": "application/json", requestid.Header: fmt.Sprintf("e2e-runbook-nats-%d", i)})
			},
		},
		"poison-task": {
			in: func(t *testing.T) {
				publishTasks(t, st, 800_000, 1, func(int) string { return `{"first_name":"nobody"}` })
			},
			out:     func(t *testing.T) {},
			traffic: func(i int) { _, _ = send("GET", st.Service1.URL()+"/", "", nil) },
		},
		"vendor-refuses": { // from the start
			in:      func(t *testing.T) {},
			out:     func(t *testing.T) {},
			traffic: func(i int) { _, _ = send("GET", st.Service1.URL()+"/users/1", "", nil) },
		},
	}
	order := []string{"poison-task", "vendor-refuses", "service2-down", "service2-latency", "nats-down"}
	byFault := map[string][]runbook.Page{}
	for _, p := range pages {
		if _, ok := faults[p.Fault]; !ok {
			t.Errorf("%s: fault %q: this test has no such fault (it has %v)", p.Path, p.Fault, order)
			continue
		}
		byFault[p.Fault] = append(byFault[p.Fault], p)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, name := range order {
		f := faults[name]
		t.Run(name, func(t *testing.T) {
			if len(byFault[name]) == 0 {
				t.Fatalf("no runbook names the fault %s: a fault this test brings on must be some page's (drop it, or name it in a page)", name)
			}
			f.in(t)
			defer f.out(t)
			// The fault's traffic, four at a time, until the queries are done.
			var stop atomic.Bool
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; !stop.Load(); i += 4 {
						f.traffic(i)
						time.Sleep(50 * time.Millisecond)
					}
				})
			}
			defer func() { stop.Store(true); wg.Wait() }()
			for _, p := range byFault[name] {
				for _, q := range p.Queries {
					var n int
					var err error
					took, ok := poll(90*time.Second, time.Second, func() bool {
						n, err = answer(context.Background(), hc, st, q)
						return err == nil && n > 0
					})
					if !ok {
						t.Errorf("%s: %s query returned no data within 90 s of the fault (%d, %v):\n%s", p.Path, q.Kind, n, err, q.Text)
						continue
					}
					t.Logf("%s: %s: %d results after %v", p.Alert, q.Kind, n, took.Round(time.Second))
				}
			}
		})
	}
}

// answer runs a runbook query and returns how much data it gave: the
// series of a PromQL query, the log lines of a LogQL one, the traces of a
// Jaeger search.
func answer(ctx context.Context, hc *http.Client, st *devstack.Stack, q runbook.Query) (int, error) {
	switch q.Kind {
	case "promql":
		r, err := promapi.Query(ctx, hc, st.Prometheus.URL(), q.Text)
		return len(r.Data.Result), err
	case "logql":
		v := url.Values{"query": {q.Text}, "limit": {"100"}, "start": {fmt.Sprint(time.Now().Add(-15 * time.Minute).UnixNano())}}
		var r struct {
			Data struct {
				Result []struct {
					Values [][2]string `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := getJSON(ctx, hc, st.Loki.URL()+"/loki/api/v1/query_range?"+v.Encode(), &r); err != nil {
			return 0, err
		}
		n := 0
		for _, s := range r.Data.Result {
			n += len(s.Values)
		}
		return n, nil
	case "jaeger":
		var r struct {
			Data []json.RawMessage `json:"data"`
		}
		err := getJSON(ctx, hc, st.Jaeger.URL()+"/api/traces?"+q.Text, &r)
		return len(r.Data), err
	}
	return 0, fmt.Errorf("unknown query kind %q", q.Kind)
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func setEnabled(t *testing.T, p *toxiclient.Proxy, on bool) {
	t.Helper()
	p.Enabled = on
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
}

// resetChaos undoes every fault and waits until service1 is ready again
// (its breaker closed), so that the next fault starts from a healthy stack.
func resetChaos(t *testing.T, st *devstack.Stack) {
	t.Helper()
	if err := st.Chaos.Reset(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := devstack.WaitReady(ctx, st.Service1.URL()+"/readyz", 60*time.Second); err != nil {
		t.Fatalf("service1 not ready after the fault: %v", err)
	}
}
