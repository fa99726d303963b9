//go:build compose

// Package compose is the compose smoke (make compose-smoke): the workshop's
// front door, make up, run for real on this machine's Docker engine, with
// every image built here (make images: the third-party ones as labelled
// stand-ins, the project's from its Dockerfile through BuildKit), then the
// walkthroughs, the chaos targets, scaling, the logs pipeline and make down
// against it.
package compose

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const repoRoot = "../.."

// project is the compose project's name (docker-compose.yml's name:).
const project = "failready"

// composeEnv is what every command of the smoke runs with: the smoke's
// override (the Loki door, no Grafana) and the version the images carry.
func composeEnv() []string {
	return append(os.Environ(),
		"COMPOSE_FILE=docker-compose.yml:compose.smoke.yaml",
		"GIT_COMMIT=smoke",
		"CHAOS_FLAGS=-scale 0.25", // the experiments' faults a quarter as long: the same code, the same hypotheses
	)
}

// run runs a command in the repository with the smoke's environment, its
// output streamed to the test log; it fails the test on a non-zero exit.
func run(t *testing.T, limit time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, limit, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 60))
	}
	return out
}

func runErr(t *testing.T, limit time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	cmd.Env = composeEnv()
	cmd.WaitDelay = 10 * time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %.1f s", name, strings.Join(args, " "), time.Since(start).Seconds())
	if ctx.Err() != nil {
		err = fmt.Errorf("not done within %s: %w", limit, err)
	}
	return buf.String(), err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// container is what docker inspect says of one of the project's containers.
type container struct {
	ID           string
	Name         string
	RestartCount int
	Config       struct {
		Labels map[string]string
	}
	State struct {
		Status    string
		OOMKilled bool
		ExitCode  int
		Health    *struct {
			Status string
			Log    []struct {
				ExitCode int
				Output   string
			}
		}
	}
	HostConfig struct {
		Memory int64
	}
	LogPath string
}

func (c container) service() string { return c.Config.Labels["com.docker.compose.service"] }

// containers lists the project's containers (running or not).
func containers(t *testing.T) []container { return containersOf(t, project) }

// containersOf lists a compose project's containers (running or not).
func containersOf(t *testing.T, project string) []container {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+project).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	out, err = exec.Command("docker", append([]string{"inspect"}, ids...)...).Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	var cs []container
	if err := json.Unmarshal(out, &cs); err != nil {
		t.Fatal(err)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return cs
}

// explainUnhealthy fails the test once for each container that is not
// running and healthy (see whatIsWrong).
func explainUnhealthy(t *testing.T, peaks map[string]int64) {
	t.Helper()
	for _, m := range whatIsWrong(containers(t), peaks) {
		t.Error(m)
	}
}

// whatIsWrong names each container that is not running and healthy: an
// OOM kill with its limit and peak, a healthcheck's last output, or its
// exit.
func whatIsWrong(cs []container, peaks map[string]int64) []string {
	var out []string
	for _, c := range cs {
		name := strings.TrimPrefix(c.Name, "/")
		switch {
		case c.State.OOMKilled:
			peak := "not sampled before it died"
			if p, ok := peaks[c.ID]; ok {
				peak = fmt.Sprintf("%d MiB", p>>20)
			}
			out = append(out, fmt.Sprintf("%s was OOM-killed: limit %d MiB, peak %s", name, c.HostConfig.Memory>>20, peak))
		case c.State.Health != nil && c.State.Health.Status != "healthy":
			last := "no run yet"
			if n := len(c.State.Health.Log); n > 0 {
				l := c.State.Health.Log[n-1]
				last = fmt.Sprintf("exit %d: %s", l.ExitCode, strings.TrimSpace(l.Output))
			}
			out = append(out, fmt.Sprintf("%s is %s; its healthcheck said: %s", name, c.State.Health.Status, last))
		case c.State.Status != "running":
			out = append(out, fmt.Sprintf("%s is %s (exit %d)", name, c.State.Status, c.State.ExitCode))
		}
	}
	return out
}

// memory samples each container's peak memory (the cgroup's own high-water
// mark) until stopped.
type memory struct {
	mu    sync.Mutex
	peak  map[string]int64 // container ID -> bytes
	limit map[string]int64
	name  map[string]string
	stop  chan struct{}
	done  chan struct{}
}

func watchMemory(t *testing.T) *memory {
	m := &memory{peak: map[string]int64{}, limit: map[string]int64{}, name: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			m.sample(t)
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// cgroupPeak reads a container's peak memory: cgroup v2's memory.peak, or
// v1's memory.max_usage_in_bytes (both under the cgroupfs or systemd
// driver's paths).
func cgroupPeak(id string) (int64, bool) {
	for _, f := range []string{
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.peak",
		"/sys/fs/cgroup/docker/" + id + "/memory.peak",
		"/sys/fs/cgroup/memory/docker/" + id + "/memory.max_usage_in_bytes",
		"/sys/fs/cgroup/memory/system.slice/docker-" + id + ".scope/memory.max_usage_in_bytes",
	} {
		if b, err := os.ReadFile(f); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func (m *memory) sample(t *testing.T) {
	out, err := exec.Command("docker", "ps", "--no-trunc", "--filter", "label=com.docker.compose.project="+project,
		"--format", `{{.ID}} {{.Names}}`).Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		p, ok := cgroupPeak(id)
		if !ok {
			continue
		}
		m.mu.Lock()
		if _, seen := m.limit[id]; !seen {
			if b, err := exec.Command("docker", "inspect", "-f", "{{.HostConfig.Memory}}", id).Output(); err == nil {
				m.limit[id], _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			}
		}
		m.name[id] = name
		m.peak[id] = max(m.peak[id], p)
		m.mu.Unlock()
	}
}

// table is the peaks by container name, against the limits.
func (m *memory) table() (string, map[string]int64) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	type row struct {
		name        string
		peak, limit int64
	}
	var rows []row
	peaks := map[string]int64{}
	for id, p := range m.peak {
		rows = append(rows, row{m.name[id], p, m.limit[id]})
		peaks[id] = p
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	var b strings.Builder
	fmt.Fprintf(&b, "| container | peak (MiB) | limit (MiB) | peak/limit |\n|---|---:|---:|---:|\n")
	for _, r := range rows {
		ratio := "-"
		if r.limit > 0 {
			ratio = fmt.Sprintf("%.0f %%", 100*float64(r.peak)/float64(r.limit))
		}
		fmt.Fprintf(&b, "| %s | %.1f | %d | %s |\n", r.name, float64(r.peak)/(1<<20), r.limit>>20, ratio)
	}
	return b.String(), peaks
}

// left lists what the project left on the engine: containers, volumes,
// networks with its compose label.
func left(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, kind := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q"}} {
		b, err := exec.Command("docker", append(kind, "--filter", "label=com.docker.compose.project="+project)...).Output()
		if err != nil {
			t.Errorf("docker %v: %v", kind, err)
			continue
		}
		for _, id := range strings.Fields(string(b)) {
			out = append(out, kind[0]+" "+id)
		}
	}
	return out
}

// TestComposeSmoke is the smoke, in order; a failure anywhere stops it, and
// make down runs on every exit path.
func TestComposeSmoke(t *testing.T) {
	if out, err := exec.Command("docker", "compose", "version", "--short").Output(); err != nil {
		t.Fatalf("docker compose v2 is not installed as a docker CLI plugin (make docker-plugins): %v", err)
	} else {
		t.Logf("docker compose %s", strings.TrimSpace(string(out)))
	}
	if before := left(t); len(before) > 0 {
		t.Fatalf("the project already has things on this engine (%v): make down first", before)
	}
	mem := watchMemory(t)
	var peaks map[string]int64
	memDone := false
	finishMemory := func() {
		if memDone {
			return
		}
		memDone = true
		var table string
		table, peaks = mem.table()
		t.Logf("peak memory of every container (cgroup high-water mark) against its limit:\n%s", table)
		if f := os.Getenv("SMOKE_MEMORY_TABLE"); f != "" {
			_ = os.WriteFile(f, []byte(table), 0o644)
		}
	}
	t.Cleanup(func() {
		finishMemory()
		if t.Failed() {
			explainUnhealthy(t, peaks)
			if out, err := runErr(t, 2*time.Minute, "docker", "compose", "logs", "--no-color", "--tail", "30"); err == nil {
				t.Logf("the last lines of each container:\n%s", tail(out, 400))
			}
		}
		if out, err := runErr(t, 3*time.Minute, "make", "--no-print-directory", "down"); err != nil {
			t.Errorf("make down: %v\n%s", err, tail(out, 30))
		}
		if l := left(t); len(l) > 0 {
			t.Errorf("make down left %v", l)
		}
	})

	// A host port make up needs, taken: make up names it and starts nothing.
	t.Run("up-refuses-a-taken-port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:9102") // statsd-exporter's
		if err != nil {
			t.Fatalf("the port the test takes is taken already: %v", err)
		}
		defer ln.Close()
		out, err := runErr(t, 5*time.Minute, "make", "--no-print-directory", "up")
		if err == nil || !strings.Contains(out, "taken: 127.0.0.1:9102") {
			t.Fatalf("make up with 127.0.0.1:9102 taken: %v\n%s", err, tail(out, 20))
		}
		if cs := containers(t); len(cs) > 0 {
			t.Fatalf("make up refused, but made %d containers", len(cs))
		}
	})
	if t.Failed() {
		return
	}

	t.Run("up", func(t *testing.T) {
		start := time.Now()
		out, err := runErr(t, 15*time.Minute, "make", "--no-print-directory", "up")
		if err != nil {
			explainUnhealthy(t, nil)
			t.Fatalf("make up: %v\n%s", err, tail(out, 40))
		}
		t.Logf("make up to every healthcheck green: %.1f s", time.Since(start).Seconds())
		for _, c := range containers(t) {
			if c.State.Status != "running" || (c.State.Health != nil && c.State.Health.Status != "healthy") {
				explainUnhealthy(t, nil)
				t.FailNow()
			}
		}
	})
	if t.Failed() {
		return
	}

	// The walkthroughs' scripts, unchanged (walkthrough 4 is the game day:
	// its experiments are below; walkthrough 7 needs a cluster).
	for _, w := range []string{"logging", "metrics", "tracing", "logs-pipeline", "worker"} {
		if !t.Run("walkthrough-"+w, func(t *testing.T) {
			run(t, 6*time.Minute, "make", "--no-print-directory", "walkthrough-"+w)
		}) {
			return
		}
	}

	// The chaos-* targets the walkthroughs did not run, each through the
	// experiment that checks its effect (chaos-mysql-down, -nats-down,
	// -worker-slow, -poison-task and -kill-worker ran in walkthroughs 2 to
	// 6, each with its effect checked there).
	// In the game day's order (make gameday's, by name).
	for _, e := range []string{"mysql-reset-peer", "service2-down", "service2-kill", "service2-latency", "spool-full"} {
		if !t.Run("experiment-"+e, func(t *testing.T) {
			out := run(t, 5*time.Minute, "make", "--no-print-directory", "experiment", "NAME="+e)
			if !strings.Contains(out, "verdict: HELD") {
				t.Fatalf("%s did not hold:\n%s", e, tail(out, 30))
			}
		}) {
			return
		}
	}

	if !t.Run("scale-worker-3", func(t *testing.T) { scaleWorkers(t) }) {
		return
	}
	if !t.Run("request-id-to-loki", func(t *testing.T) { requestIDThroughThePipeline(t) }) {
		return
	}
	if !t.Run("crash-stack-under-its-service", func(t *testing.T) { crashUnderItsService(t) }) {
		return
	}
	// A load still running when the stack goes down (a make load, or the
	// chaos runner's, whose docker compose run missed the stop): make down
	// removes it too, with the network it holds. Compose skips a service
	// of an inactive profile, its one-off containers included.
	t.Run("down-with-a-load-running", func(t *testing.T) {
		run(t, 3*time.Minute, "docker", "compose", "--profile", "load", "run", "-d", "loadgen", "-rate", "5", "-duration", "10m")
	})
	finishMemory()
	for _, c := range containers(t) {
		if c.State.OOMKilled {
			t.Errorf("%s was OOM-killed (limit %d MiB)", strings.TrimPrefix(c.Name, "/"), c.HostConfig.Memory>>20)
		}
	}
}

// scaleWorkers: three workers, and the tasks of 60 creates (over 6 s)
// drained by all three.
func scaleWorkers(t *testing.T) {
	run(t, 3*time.Minute, "docker", "compose", "up", "-d", "--wait", "--no-recreate", "--scale", "worker=3", "worker")
	ws := 0
	for _, c := range containers(t) {
		if c.service() == "worker" && c.State.Status == "running" {
			ws++
		}
	}
	if ws != 3 {
		t.Fatalf("%d workers running, want 3", ws)
	}
	since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	for i := range 60 {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:8000/users", strings.NewReader(fmt.Sprintf(`{"first_name":"scale","last_name":"w%d"}`, i)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %d: %s", i, resp.Status)
		}
		time.Sleep(100 * time.Millisecond) // over 6 s: every worker pulls its share
	}
	// Each worker's own lines (docker compose logs prefixes the replica).
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _ := runErr(t, time.Minute, "docker", "compose", "logs", "--no-color", "--since", since, "worker")
		per := map[string]int{}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			prefix, line, ok := strings.Cut(sc.Text(), "|")
			if ok && strings.Contains(line, `"msg":"welcome message sent"`) {
				per[strings.TrimSpace(prefix)]++
			}
		}
		total := 0
		for _, n := range per {
			total += n
		}
		if total >= 60 && len(per) == 3 {
			t.Logf("60 tasks drained by %v", per)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d of 60 tasks done, by %v (want all three workers)", total, per)
		}
		time.Sleep(2 * time.Second)
	}
	run(t, 3*time.Minute, "docker", "compose", "up", "-d", "--wait", "--scale", "worker=2", "worker")
}

// lokiQuery asks the Loki door (Loki's API) for records.
func lokiQuery(t *testing.T, q string) []struct {
	Stream map[string]string
	Values [][]string
} {
	t.Helper()
	u := "http://127.0.0.1:3100/loki/api/v1/query_range?" + url.Values{"query": {q}, "limit": {"100"}, "since": {"1h"}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Stream map[string]string
				Values [][]string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %s %v", q, resp.Status, err)
	}
	return r.Data.Result
}

// requestIDThroughThePipeline follows one request ID from service1's access
// line, in Docker's own json-file log, through the collector's reading of it,
// to Loki's door, under service_name="service1".
func requestIDThroughThePipeline(t *testing.T) {
	id := fmt.Sprintf("smoke-%d", time.Now().UnixNano())
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8000/", nil)
	req.Header.Set("X-Request-ID", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-ID"); got != id || resp.StatusCode != 200 {
		t.Fatalf("GET / with X-Request-ID %s: %s, X-Request-ID %q", id, resp.Status, got)
	}
	// Docker's log file of service1's container: the access line, with the
	// service's name in attrs (compose's logging labels).
	var s1 container
	for _, c := range containers(t) {
		if c.service() == "service1" {
			s1 = c
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := exec.Command("grep", "-h", id, s1.LogPath).Output()
		if err == nil {
			var e struct {
				Log   string
				Attrs map[string]string
			}
			line := strings.SplitN(string(b), "\n", 2)[0]
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.Attrs["com.docker.compose.service"] != "service1" || !strings.Contains(e.Log, `"msg":"http request"`) {
				t.Fatalf("Docker's entry for %s: %s (%v)", id, line, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not in Docker's log file %s within 10 s", id, s1.LogPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The same line at Loki's door, under its service.
	deadline = time.Now().Add(45 * time.Second)
	for {
		res := lokiQuery(t, fmt.Sprintf(`{service_name="service1"} | request_id=%q`, id))
		if len(res) > 0 {
			s := res[0].Stream
			if s["service_name"] != "service1" || s["deployment_environment_name"] != "workshop" || len(res[0].Values) == 0 {
				t.Fatalf("the record's stream: %v", s)
			}
			t.Logf("%s reached Loki's door: %v", id, s)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach Loki's door under service_name=service1 within 45 s", id)
		}
		time.Sleep(time.Second)
	}
}

// crashUnderItsService: service2's goroutine dump (SIGQUIT, sent from
// inside its container as make chaos-kill sends SIGKILL: the Go runtime
// prints every stack and exits 2) is one record at Loki's door under
// service_name="service2", and restart: always brings service2 back.
func crashUnderItsService(t *testing.T) {
	restarts := func() int {
		for _, c := range containers(t) {
			if c.service() == "service2" {
				return c.RestartCount
			}
		}
		return -1
	}
	before := restarts()
	run(t, time.Minute, "scripts/stack.sh", "kill", "service2", "QUIT")
	deadline := time.Now().Add(45 * time.Second)
	for {
		res := lokiQuery(t, `{service_name="service2"} |= "SIGQUIT: quit"`)
		var bodies []string
		for _, r := range res {
			for _, v := range r.Values {
				bodies = append(bodies, v[1])
			}
		}
		if len(bodies) > 0 {
			if len(bodies) != 1 || !strings.Contains(bodies[0], "goroutine ") || !strings.Contains(bodies[0], "main.main()") {
				t.Fatalf("the dump in %d records, the first %.300q", len(bodies), bodies[0])
			}
			t.Logf("service2's SIGQUIT dump: one record of %d lines under service_name=service2", strings.Count(bodies[0], "\n"))
			break
		}
		if time.Now().After(deadline) {
			unknown := lokiQuery(t, `{service_name="unknown_service"} |= "SIGQUIT"`)
			t.Fatalf("no SIGQUIT dump under service_name=service2 within 45 s (under unknown_service: %d streams)", len(unknown))
		}
		time.Sleep(time.Second)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:8001/readyz")
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == 200 && restarts() > before {
			t.Logf("service2 back by its restart policy (restart count %d)", restarts())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service2 not back within 60 s of its crash (restart count %d, was %d)", restarts(), before)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// ownProject removes the containers of a test's own compose project (by
// its label) now, in case a killed run left some, and when the test ends.
func ownProject(t *testing.T, proj string) {
	cleanup := func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+proj).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
	}
	cleanup()
	t.Cleanup(cleanup)
}

// TestSmokeSaysWhatIsWrong: what the smoke prints when make up fails, on
// real containers: a healthcheck that cannot run (wget of a port nothing
// listens on) names the container and what the command printed; an
// OOM-killed container names itself, its limit and its peak.
func TestSmokeSaysWhatIsWrong(t *testing.T) {
	const proj = "failready-smoke-explain"
	ownProject(t, proj)
	busybox := "busybox:1.37.0" // the diskfill job's image
	start := func(name string, args ...string) {
		t.Helper()
		cmd := append([]string{"run", "-d", "--name", name, "--label", "com.docker.compose.project=" + proj, "--network", "none"}, args...)
		if out, err := exec.Command("docker", cmd...).CombinedOutput(); err != nil {
			t.Fatalf("docker %v: %v\n%s", cmd, err, out)
		}
	}
	start(proj+"-probe", "--health-cmd", "wget -q -O /dev/null http://localhost:1/", "--health-interval", "1s", "--health-retries", "1", busybox, "sleep", "60")
	start(proj+"-hog", "--memory", "16m", "--memory-swap", "16m", busybox, "sh", "-c", `x=$(head -c 67108864 /dev/zero | tr '\0' a); sleep 60`)
	peaks := map[string]int64{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs := containersOf(t, proj)
		for _, c := range cs {
			if p, ok := cgroupPeak(c.ID); ok {
				peaks[c.ID] = max(peaks[c.ID], p)
			}
		}
		msgs := whatIsWrong(cs, peaks)
		joined := strings.Join(msgs, "\n")
		if strings.Contains(joined, proj+"-probe is unhealthy; its healthcheck said: exit 1: wget: can't connect to remote host") &&
			strings.Contains(joined, proj+"-hog was OOM-killed: limit 16 MiB") {
			t.Logf("what the smoke says:\n%s", joined)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the smoke would say:\n%s", joined)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
