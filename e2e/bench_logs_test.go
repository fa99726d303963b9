//go:build e2e && benchload

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/lokidoor/lokitest"
)

// TestLogsPipelineThroughput (make bench-logs): how many of the services'
// lines a second the real collector, with the project's config and pinned
// to one core, takes from Docker's log files to Loki's door with none lost
// or repeated, and its memory meanwhile. A burst of access lines (the
// services' real shape, about 550 bytes each as Docker keeps them) is
// written at once to a container's log file; the time from the write to
// the last record at the door gives the rate. The baseline, in the same
// run on the same core: the same binary, with the same feature gate,
// reading and forwarding the same bursts with none of the pipeline's
// decisions (the container operator only), so the ratio is what the
// decisions cost.
func TestLogsPipelineThroughput(t *testing.T) {
	otelcol := toolBin(t, "OTELCOL_BIN")
	rcv := lokitest.ListenLogs(t)
	containers := t.TempDir()
	st, _ := startStackWith(t, devstack.Options{Telemetry: devstack.Telemetry{OtelcolBin: otelcol}, ContainerLogs: containers,
		Collector: devstack.CollectorOptions{LogsExportEndpoint: "http://" + rcv.Addr() + "/otlp"}})
	time.Sleep(3 * time.Second) // the services' start lines go through first

	// The baseline: a collector of its own, reading its own folder.
	baseDir, baseStore := t.TempDir(), t.TempDir()
	cfg := fmt.Sprintf(`extensions: {file_storage: {directory: %s}}
receivers:
  file_log:
    include: ["%s/*/*-json.log"]
    start_at: beginning
    storage: file_storage
    operators: [{type: container, format: docker, add_metadata_from_filepath: false}]
exporters:
  otlp_http: {endpoint: "http://%s/otlp", sending_queue: {storage: file_storage, sizer: items, queue_size: 200000}, retry_on_failure: {max_elapsed_time: 0}}
service:
  extensions: [file_storage]
  telemetry: {metrics: {level: none}}
  pipelines: {logs: {receivers: [file_log], exporters: [otlp_http]}}
`, baseStore, baseDir, rcv.Addr())
	cfgFile := filepath.Join(t.TempDir(), "baseline.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	base := exec.Command(otelcol, "--config="+cfgFile, devstack.CollectorFeatureGates)
	var baseOut strings.Builder
	base.Stdout, base.Stderr = &baseOut, &baseOut
	if err := base.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = base.Process.Kill(); _ = base.Wait() })

	// One core for each collector, every thread of it; the door and the
	// writer run on the other.
	for _, pid := range []int{st.Collector.Pid(), base.Process.Pid} {
		if out, err := exec.Command("taskset", "-a", "-cp", "1", strconv.Itoa(pid)).CombinedOutput(); err != nil {
			t.Fatalf("taskset: %v: %s", err, out)
		}
	}
	time.Sleep(2 * time.Second)
	idle, err := st.Collector.RSS()
	if err != nil {
		t.Fatal(err)
	}

	// burst writes n access lines to a new container's log file under dir
	// and waits until all have arrived: the rate, and the file's size.
	burst := func(dir, name string, n int) (float64, int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		var b []byte
		now := time.Now().UTC()
		for i := range n {
			line := fmt.Sprintf(`{"time":%q,"level":"INFO","msg":"http request","service":"burst","version":"abc1234","deployment_id":"bench",`+
				`"method":"GET","route":"/users/{id}","path":"/users/%d","status":200,"duration_ms":1.234,"content_type":"application/json",`+
				`"bytes":47,"remote_addr":"172.18.0.4:51234","request_id":"%s-%07d","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}`,
				now.Add(time.Duration(i)).Format(time.RFC3339Nano), i%1000, name, i)
			e, _ := json.Marshal(map[string]string{"log": line + "\n", "stream": "stdout", "time": now.Format(time.RFC3339Nano)})
			b = append(append(b, e...), '\n')
		}
		seen := func() map[string]int {
			c := map[string]int{}
			for _, r := range rcv.Records() {
				if strings.Contains(r.Body, `"request_id":"`+name+"-") { // the baseline's: the whole line
					c[r.Body]++
				} else if strings.HasPrefix(r.Attrs["request_id"], name+"-") { // the pipeline's
					c[r.Attrs["request_id"]]++
				}
			}
			return c
		}
		start := time.Now()
		if err := os.WriteFile(filepath.Join(dir, name, name+"-json.log"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, ok := poll(5*time.Minute, 50*time.Millisecond, func() bool { return len(seen()) >= n })
		took := time.Since(start)
		if !ok {
			t.Fatalf("%s: %d of %d lines within 5 minutes", name, len(seen()), n)
		}
		time.Sleep(2 * time.Second)
		c, dup := seen(), 0
		for _, v := range c {
			if v > 1 {
				dup++
			}
		}
		if len(c) != n || dup != 0 {
			t.Errorf("%s: %d distinct lines of %d arrived, %d more than once", name, len(c), n, dup)
		}
		return float64(n) / took.Seconds(), len(b)
	}

	for _, n := range []int{20_000, 100_000} {
		pipeline, size := burst(containers, fmt.Sprintf("pipeline%d", n), n)
		baseline, _ := burst(baseDir, fmt.Sprintf("baseline%d", n), n)
		peak, err := devstack.ProcMemory(st.Collector.Pid(), "VmHWM")
		if err != nil {
			t.Fatal(err)
		}
		verdict := "met"
		if pipeline < 5000 {
			verdict = "missed"
		}
		t.Logf("burst of %d lines (%.1f MiB of json-file logs), each arrived once: %.0f lines/s through the pipeline on one core (target 5 000: %s), "+
			"%.0f lines/s read and forwarded only: the decisions cost %.2f× the time; collector RSS %.1f MiB idle, peak %.1f MiB",
			n, float64(size)/(1<<20), pipeline, verdict, baseline, baseline/pipeline, float64(idle)/(1<<20), float64(peak)/(1<<20))
	}
	if t.Failed() {
		t.Logf("the baseline collector's output:\n%s", baseOut.String())
	}
}
