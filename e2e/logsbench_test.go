//go:build e2e && benchload

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/failready/failready/internal/devstack"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// TestLogsPipelineThroughput (make bench-logs): how many of the services'
// lines a second the real collector, with the project's config and pinned
// to one core, takes from Docker's log files to Loki's door with none lost
// or repeated, and its memory meanwhile. A burst of access lines (the
// services' real shape, 460 bytes each) is written at once to a container's
// log file; the time from the write to the last record at the door gives
// the rate; its memory, idle before and at its peak (VmHWM) after.
func TestLogsPipelineThroughput(t *testing.T) {
	rcv := otlptest.ListenLogs(t)
	containers := t.TempDir()
	st, _ := startStackWith(t, devstack.Options{OtelcolBin: toolBin(t, "OTELCOL_BIN"), ContainerLogs: containers,
		LogsExportEndpoint: "http://" + rcv.Addr() + "/otlp"})
	// One core for the collector, every thread of it; the door and the
	// writer run on the other.
	if out, err := exec.Command("taskset", "-a", "-cp", "1", strconv.Itoa(st.Collector.Pid())).CombinedOutput(); err != nil {
		t.Fatalf("taskset: %v: %s", err, out)
	}
	time.Sleep(3 * time.Second) // the services' start lines go through first
	idle, err := st.Collector.RSS()
	if err != nil {
		t.Fatal(err)
	}
	before := len(rcv.Records())

	for _, n := range []int{20_000, 100_000} {
		dir := filepath.Join(containers, fmt.Sprintf("burst%d", n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b []byte
		now := time.Now().UTC()
		for i := range n {
			line := fmt.Sprintf(`{"time":%q,"level":"INFO","msg":"http request","service":"burst","version":"abc1234","deployment_id":"bench",`+
				`"method":"GET","route":"/users/{id}","path":"/users/%d","status":200,"duration_ms":1.234,"content_type":"application/json",`+
				`"bytes":47,"remote_addr":"172.18.0.4:51234","request_id":"burst-%d-%07d","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}`,
				now.Add(time.Duration(i)).Format(time.RFC3339Nano), i%1000, n, i)
			e, _ := json.Marshal(map[string]string{"log": line + "\n", "stream": "stdout", "time": now.Format(time.RFC3339Nano)})
			b = append(append(b, e...), '\n')
		}
		start := time.Now()
		if err := os.WriteFile(filepath.Join(dir, "burst-json.log"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		count := func() map[string]int {
			c := map[string]int{}
			for _, r := range rcv.Records()[before:] {
				if r.Resource["service.name"] == "burst" && len(r.Attrs["request_id"]) > 6 {
					c[r.Attrs["request_id"]]++
				}
			}
			return c
		}
		_, ok := poll(5*time.Minute, 50*time.Millisecond, func() bool { return len(rcv.Records())-before >= n })
		took := time.Since(start)
		if !ok {
			t.Fatalf("%d of %d records within 5 minutes", len(count()), n)
		}
		time.Sleep(2 * time.Second)
		c := count()
		dup := 0
		for _, v := range c {
			if v > 1 {
				dup++
			}
		}
		if len(c) != n || dup != 0 {
			t.Errorf("burst of %d: %d distinct lines arrived, %d more than once", n, len(c), dup)
		}
		before = len(rcv.Records())
		peak, err := devstack.ProcMemory(st.Collector.Pid(), "VmHWM")
		if err != nil {
			t.Fatal(err)
		}
		rate := float64(n) / took.Seconds()
		verdict := "met"
		if rate < 5000 {
			verdict = "missed"
		}
		t.Logf("burst of %d lines (%.1f MiB of json-file logs): all arrived once in %v: %.0f lines/s on one core (target 5 000: %s); collector RSS %.1f MiB idle, peak %.1f MiB",
			n, float64(len(b))/(1<<20), took.Round(10*time.Millisecond), rate, verdict, float64(idle)/(1<<20), float64(peak)/(1<<20))
	}
}
