//go:build e2e

package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	_ "github.com/go-sql-driver/mysql"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/internal/logging/logtest"
)

// The chaos tests put toxiproxy (in process, from its Go module) on both hops
// of the real stack, as docker-compose.yml does, and break things.

func chaosStack(t *testing.T, env map[string][]string) *devstack.Stack {
	t.Helper()
	st, _ := startStackWith(t, devstack.Options{Chaos: devstack.ChaosOptions{Enabled: true}, Env: env})
	t.Cleanup(func() { _ = st.Chaos.Reset() })
	return st
}

// TestChaosLatencyAboveTheDeadline: service2 answers 3 s late; every request
// answers 504 JSON within its 1 s budget (plus a margin), however many
// arrive: none piles up.
func TestChaosLatencyAboveTheDeadline(t *testing.T) {
	st := chaosStack(t, map[string][]string{"service1": {"REQUEST_TIMEOUT=1s"}})
	if _, err := st.Chaos.Service2.AddToxic("slow", "latency", "downstream", 1, toxiclient.Attributes{"latency": 3000}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for range 20 {
		wg.Go(func() {
			r := call(t, "GET", st.Service1.URL()+"/users/1", "", nil)
			if r.status != 504 || !strings.Contains(r.body, `"request_id"`) {
				t.Errorf("slow service2: %d %s", r.status, r.body)
			}
			mu.Lock()
			worst = max(worst, r.took)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("20 concurrent requests against a 3 s service2: all 504, the slowest after %s", worst.Round(time.Millisecond))
	if worst > 1500*time.Millisecond {
		t.Fatalf("a request took %s; the budget was 1s", worst)
	}
}

// TestChaosService2Down: service2 unreachable → 503 fast; the breaker opens
// and then fails fast with Retry-After, readiness false; once service2 is
// back, the breaker closes again by itself.
func TestChaosService2Down(t *testing.T) {
	st := chaosStack(t, map[string][]string{"service1": {"BREAKER_OPEN_FOR=1s"}})
	base := st.Service1.URL()
	if err := st.Chaos.Service2.Disable(); err != nil {
		t.Fatal(err)
	}
	r := call(t, "GET", base+"/users/1", "", nil)
	if r.status != 503 || r.took > time.Second {
		t.Fatalf("service2 down: %d after %s: %s", r.status, r.took, r.body)
	}
	for range 3 { // five failed attempts open it (each request tries up to 3 times)
		call(t, "GET", base+"/users/1", "", nil)
	}
	r = call(t, "GET", base+"/users/1", "", nil)
	if r.status != 503 || !strings.Contains(r.body, "circuit breaker open") || r.took > 100*time.Millisecond {
		t.Fatalf("breaker should fail fast: %d after %s: %s", r.status, r.took, r.body)
	}
	resp, err := http.Get(base + "/users/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After while the breaker is open")
	}
	if r := call(t, "GET", base+"/readyz", "", nil); r.status != 503 {
		t.Errorf("readyz with the breaker open: %d", r.status)
	}
	if err := st.Chaos.Service2.Enable(); err != nil {
		t.Fatal(err)
	}
	el := waitStatus(t, base+"/users/1", 200, 10*time.Second)
	t.Logf("service1 served again %s after service2 came back (breaker open for 1s)", el.Round(time.Millisecond))
	waitStatus(t, base+"/readyz", 200, 5*time.Second)
}

// TestChaosMySQLDownAndReset: MySQL unreachable, then every connection reset:
// service2 answers 503 fast and is not ready; it recovers by itself within
// 2 s of MySQL returning, without a restart.
func TestChaosMySQLDownAndReset(t *testing.T) {
	st := chaosStack(t, nil)
	s2 := st.Service2.URL()
	for name, brk := range map[string]func() error{
		"down": st.Chaos.MySQL.Disable,
		"reset": func() error {
			_, err := st.Chaos.MySQL.AddToxic("reset", "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 0})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := brk(); err != nil {
				t.Fatal(err)
			}
			r := call(t, "GET", s2+"/users", "", nil)
			if r.status != 503 || r.took > 2500*time.Millisecond {
				t.Fatalf("MySQL %s: %d after %s: %s", name, r.status, r.took, r.body)
			}
			if r := call(t, "GET", s2+"/readyz", "", nil); r.status != 503 {
				t.Fatalf("readyz with MySQL %s: %d", name, r.status)
			}
			if r := call(t, "GET", s2+"/healthz", "", nil); r.status != 200 {
				t.Fatalf("liveness with MySQL %s: %d", name, r.status)
			}
			if err := st.Chaos.Reset(); err != nil {
				t.Fatal(err)
			}
			el := waitStatus(t, s2+"/users", 200, 2*time.Second)
			t.Logf("MySQL %s: service2 recovered %s after MySQL returned", name, el.Round(time.Millisecond))
			waitStatus(t, s2+"/readyz", 200, 2*time.Second)
		})
	}
}

// TestChaosCutResponseCreatesOneRow: every response from service2 is cut
// after 10 bytes; service1 retries the POST (it carries an Idempotency-Key),
// service2 receives it three times, and exactly one row exists.
func TestChaosCutResponseCreatesOneRow(t *testing.T) {
	st := chaosStack(t, nil)
	if _, err := st.Chaos.Service2.AddToxic("cut", "limit_data", "downstream", 1, toxiclient.Attributes{"bytes": 10}); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("cut%d", time.Now().UnixNano()%1e9)
	r := call(t, "POST", st.Service1.URL()+"/users", `{"first_name":"`+name+`","last_name":"x"}`, map[string]string{"X-Request-ID": name})
	if r.status < 500 {
		t.Fatalf("every response cut, yet %d %s", r.status, r.body)
	}
	time.Sleep(300 * time.Millisecond)
	posts := 0
	for _, l := range logtest.Parse(t, st.Service2.Output()) {
		if l["msg"] == "http request" && l["method"] == "POST" && l["request_id"] == name {
			posts++
		}
	}
	db, err := sql.Open("mysql", st.DB.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM users WHERE first_name = ?", name).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("service1 answered %d; service2 received the POST %d times; %d row", r.status, posts, rows)
	if posts < 2 || rows != 1 {
		t.Fatalf("%d POSTs reached service2 and made %d rows; want retries and exactly one row", posts, rows)
	}
}

// TestChaosClientRetryAfterTimeoutCreatesOneRow: service2's answers are
// held back 3 s, so the client gives up on its create after 1 s, after
// service2 committed it. The client retries with its own Idempotency-Key,
// which service1 passes on: it gets the first attempt's user, and one row
// exists. The same key with another body is a 409, through service1 too.
func TestChaosClientRetryAfterTimeoutCreatesOneRow(t *testing.T) {
	st := chaosStack(t, nil)
	if _, err := st.Chaos.Service2.AddToxic("slow", "latency", "downstream", 1, toxiclient.Attributes{"latency": 3000}); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("retry%d", time.Now().UnixNano()%1e9)
	body := `{"first_name":"` + name + `","last_name":"x"}`
	key := "client-" + name
	req, _ := http.NewRequest("POST", st.Service1.URL()+"/users", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if resp, err := (&http.Client{Timeout: time.Second}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the client's first attempt got %d within 1 s; the toxic should hold it back 3 s", resp.StatusCode)
	}
	db, err := sql.Open("mysql", st.DB.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() (n int) {
		if err := db.QueryRow("SELECT COUNT(*) FROM users WHERE first_name = ?", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var first int64
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool { return rows() == 1 }); !ok {
		t.Fatal("the first attempt made no row: service2 did not commit it before the client gave up")
	}
	if err := db.QueryRow("SELECT id FROM users WHERE first_name = ?", name).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if err := st.Chaos.Service2.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	r := call(t, "POST", st.Service1.URL()+"/users", body, map[string]string{"Idempotency-Key": key})
	var u struct{ ID int64 }
	_ = json.Unmarshal([]byte(r.body), &u)
	t.Logf("the client's retry: %d %s; rows %d", r.status, r.body, rows())
	if r.status != 201 || u.ID != first || rows() != 1 {
		t.Fatalf("retry: %d %s with %d rows; want 201 with the first attempt's user %d, one row", r.status, r.body, rows(), first)
	}
	r = call(t, "POST", st.Service1.URL()+"/users", `{"first_name":"other","last_name":"x"}`, map[string]string{"Idempotency-Key": key})
	if r.status != 409 || !strings.Contains(r.body, "reused with a different body") || !strings.Contains(r.body, `"request_id"`) {
		t.Fatalf("the same key with another body: %d %s, want 409", r.status, r.body)
	}
	if r := call(t, "POST", st.Service1.URL()+"/users", body, map[string]string{"Idempotency-Key": "not a key"}); r.status != 400 {
		t.Fatalf("a bad key: %d %s, want 400", r.status, r.body)
	}
}

// TestChaosRetryBudgetHolds: with MySQL gone every call fails; with the
// breaker kept closed, service2 still receives at most 1.2× the requests.
func TestChaosRetryBudgetHolds(t *testing.T) {
	st := chaosStack(t, map[string][]string{"service1": {
		"BREAKER_CONSECUTIVE_FAILURES=1000", "BREAKER_FAILURE_RATIO=1", "BREAKER_MIN_REQUESTS=100000",
		"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000",
	}})
	if err := st.Chaos.MySQL.Disable(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bins["cmd/loadgen"], "-target", st.Service1.URL(), "-rate", "50", "-duration", "4s", "-json").Output()
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	client, upstream := 0, 0
	for _, l := range logtest.Parse(t, st.Service1.Output()) {
		// The requests that reached for service2: all of them failed (503).
		if l["msg"] == "http request" && strings.HasPrefix(fmt.Sprint(l["request_id"]), "load-") && l["status"] == float64(503) {
			client++
		}
	}
	for _, l := range logtest.Parse(t, st.Service2.Output()) {
		if l["msg"] == "http request" && strings.HasPrefix(fmt.Sprint(l["request_id"]), "load-") {
			upstream++
		}
	}
	t.Logf("loadgen %s; service1 requests that called service2 (all 503): %d; calls reaching service2: %d (%.2f×)", strings.TrimSpace(string(out)), client, upstream, float64(upstream)/float64(client))
	if client < 100 || float64(upstream) > 1.2*float64(client) {
		t.Fatalf("%d requests made %d calls to service2", client, upstream)
	}
}

// TestChaosDiskFull: service2's spool volume fills; an export answers a
// clear 507, and works again as soon as space is freed.
func TestChaosDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		devstacktest.Missing(t, fmt.Sprintf("cannot mount a small tmpfs (needs root): %v %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	st := chaosStack(t, map[string][]string{"service2": {"SPOOL_DIR=" + dir}})
	export := st.Service2.URL() + "/users/export"
	for i := range 30 { // enough rows that the export needs some space
		call(t, "POST", st.Service1.URL()+"/users", fmt.Sprintf(`{"first_name":"disk%d","last_name":"full"}`, i), nil)
	}
	if r := call(t, "GET", export, "", nil); r.status != 200 || !strings.HasPrefix(r.body, "id,first_name,last_name") {
		t.Fatalf("export before: %d %s", r.status, r.body)
	}
	// Fill the volume.
	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(make([]byte, 1<<20)) // fails with ENOSPC at 64k: that is the point
	f.Close()
	r := call(t, "GET", export, "", nil)
	if r.status != 507 || !strings.Contains(r.body, "no space left") || !strings.Contains(r.body, `"request_id"`) {
		t.Fatalf("disk full: %d %s", r.status, r.body)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", export, "", nil); r.status != 200 {
		t.Fatalf("after freeing space: %d %s", r.status, r.body)
	}
}
