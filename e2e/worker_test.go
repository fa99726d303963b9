//go:build e2e

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/devstack"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/tracing/otlptest"
)

// startQueueStack is the stack with its own nats-server and the workers,
// their environment on top of the defaults (a little simulated latency, so
// that tasks are in flight when things break).
func startQueueStack(t *testing.T, workers int, workerEnv ...string) *devstack.Stack {
	t.Helper()
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "NATS_SERVER_BIN"), NATS: devstack.NATSOptions{Workers: workers},
		Env: map[string][]string{
			"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000"},
			"worker":   append([]string{"TASK_LATENCY=20ms"}, workerEnv...),
		}})
	return st
}

// welcomeCount is how many welcome messages the workers wrote (as the
// worker's own user, which may read them).
func welcomeCount(t *testing.T, st *devstack.Stack) int {
	t.Helper()
	db, err := sql.Open("mysql", st.DB.WorkerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM welcome_messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// createUsers creates n users through service1, from 4 clients, and
// returns the statuses seen.
func createUsers(t *testing.T, st *devstack.Stack, prefix string, n int, pace time.Duration) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := c; i < n; i += 4 {
				r := call(t, "POST", st.Service1.URL()+"/users", fmt.Sprintf(`{"first_name":"u%d","last_name":"%s"}`, i, prefix),
					map[string]string{"Content-Type": "application/json", requestid.Header: fmt.Sprintf("%s-%03d", prefix, i)})
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
				time.Sleep(pace)
			}
		})
	}
	wg.Wait()
	return statuses
}

// exactly waits until the workers have written want welcome messages, then
// checks that no more come.
func exactly(t *testing.T, st *devstack.Stack, want int, within time.Duration) time.Duration {
	t.Helper()
	took, ok := poll(within, 100*time.Millisecond, func() bool { return welcomeCount(t, st) >= want })
	if !ok {
		t.Fatalf("%d welcome messages within %v, want %d", welcomeCount(t, st), within, want)
	}
	time.Sleep(2 * time.Second) // a duplicate would come now
	if got := welcomeCount(t, st); got != want {
		t.Errorf("%d welcome messages, want exactly %d", got, want)
	}
	return took
}

// TestEveryCreatedUserIsWelcomedOnce: N creates, N welcome messages, even
// with a worker killed (SIGKILL) mid-run and restarted, and a worker
// stopped with SIGTERM under load.
func TestEveryCreatedUserIsWelcomedOnce(t *testing.T) {
	// A killed worker's tasks come back after AckWait: 5 s here.
	st := startQueueStack(t, 1, "TASK_LATENCY=50ms", "WORKER_CONCURRENCY=4", "WORKER_ACK_WAIT=5s")
	supervise(t, st)

	const n = 120
	done := make(chan map[int]int)
	go func() { done <- createUsers(t, st, "e2e-welcome", n, 20*time.Millisecond) }()
	time.Sleep(500 * time.Millisecond)
	if err := st.Workers[0].Signal(syscall.SIGKILL); err != nil { // mid-task
		t.Fatal(err)
	}
	statuses := <-done
	if statuses[201] != n {
		t.Fatalf("creates: %v, want %d × 201", statuses, n)
	}
	took := exactly(t, st, n, 90*time.Second)
	t.Logf("%d users, %d welcome messages, the last %v after the last create, a worker SIGKILLed on the way", n, n, took.Round(100*time.Millisecond))

	// SIGTERM under load: the worker finishes or gives back what it holds.
	go func() { done <- createUsers(t, st, "e2e-sigterm", 60, 20*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	if err := st.Workers[0].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := st.Workers[0].Wait(15 * time.Second); err != nil || code != 0 {
		t.Errorf("the worker after SIGTERM: exit %d, %v; want 0", code, err)
	}
	if s := <-done; s[201] != 60 {
		t.Fatalf("creates: %v", s)
	}
	exactly(t, st, n+60, 90*time.Second)
	// Their footprint, for compose's limits (BENCHMARKS.md).
	for _, p := range []*devstack.Process{st.NATS, st.Workers[0]} {
		if peak, err := devstack.ProcMemory(p.Pid(), "VmHWM"); err == nil {
			t.Logf("%s: peak RSS %.1f MiB", p.Name, float64(peak)/(1<<20))
		}
	}
}

// TestNATSAwayCreatesGoOn: NATS killed for 5 s while users are created:
// every create answers 201 (the tasks wait in the outbox), and every task
// is done once after NATS is back.
func TestNATSAwayCreatesGoOn(t *testing.T) {
	st := startQueueStack(t, 1)
	const n = 80
	done := make(chan map[int]int)
	go func() { done <- createUsers(t, st, "e2e-natsaway", n, 100*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	if err := st.NATS.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if err := st.RestartProgram(context.Background(), "nats"); err != nil {
		t.Fatal(err)
	}
	statuses := <-done
	if statuses[201] != n {
		t.Errorf("creates with NATS away: %v, want %d × 201", statuses, n)
	}
	took := exactly(t, st, n, 90*time.Second)
	t.Logf("every task done %v after the last create; NATS was away 5 s", took.Round(100*time.Millisecond))
}

// publishTasks puts tasks straight on the stream, as the relay would
// (outbox IDs from base).
func publishTasks(t *testing.T, st *devstack.Stack, base, n int, body func(i int) string) {
	t.Helper()
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := nats.NewMsg(tasks.WelcomeSubject)
		m.Data = []byte(body(i))
		m.Header.Set(tasks.HeaderCreated, time.Now().UTC().Format(time.RFC3339Nano))
		if _, err := js.PublishMsg(context.Background(), m, jetstream.WithMsgID(tasks.MsgID(int64(base+i)))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPoisonTaskIsDeadLetteredOnce: a task that can never succeed goes to
// the dead-letter stream once, with its reason, and is not retried.
func TestPoisonTaskIsDeadLetteredOnce(t *testing.T) {
	st := startQueueStack(t, 1)
	publishTasks(t, st, 900_000, 1, func(int) string { return `{"first_name":"nobody"}` })
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var dead jetstream.Stream
	if _, ok := poll(30*time.Second, 200*time.Millisecond, func() bool {
		dead, err = js.Stream(context.Background(), tasks.DeadStream)
		return err == nil && dead.CachedInfo().State.Msgs == 1
	}); !ok {
		t.Fatalf("no dead letter within 30 s (%v)", err)
	}
	time.Sleep(2 * time.Second)
	m, err := dead.GetLastMsgForSubject(context.Background(), tasks.DeadPrefix+tasks.WelcomeSubject)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := dead.Info(context.Background())
	if info.State.Msgs != 1 || !strings.Contains(m.Header.Get(tasks.HeaderDeadReason), "no user_id") || m.Header.Get(tasks.HeaderDeadDeliveries) != "1" ||
		string(m.Data) != `{"first_name":"nobody"}` {
		t.Errorf("dead letters: %d; the last: %q, reason %q, deliveries %q", info.State.Msgs, m.Data, m.Header.Get(tasks.HeaderDeadReason), m.Header.Get(tasks.HeaderDeadDeliveries))
	}
	if welcomeCount(t, st) != 0 {
		t.Error("the poison task wrote a welcome message")
	}
	stream, _ := js.Stream(context.Background(), tasks.Stream)
	if si, _ := stream.Info(context.Background()); si.State.Msgs != 0 {
		t.Errorf("%d tasks left in %s: the poison task was not terminated", si.State.Msgs, tasks.Stream)
	}
}

// TestTwoWorkersDrainFaster: a backlog of tasks that each take 100 ms
// (waiting, not computing: the 2 cores are not the limit) is drained by
// two workers in at most 0.6× the time one takes: scaling out works, the
// premise of autoscaling on queue length.
func TestTwoWorkersDrainFaster(t *testing.T) {
	st := startQueueStack(t, 1, "TASK_LATENCY=100ms", "WORKER_CONCURRENCY=2")
	const m = 60
	body := func(i int) string { return fmt.Sprintf(`{"user_id":%d}`, i+1) }
	drain := func(base, want int) time.Duration {
		start := time.Now()
		publishTasks(t, st, base, m, body)
		published := time.Since(start)
		return published + exactly(t, st, want, 2*time.Minute)
	}
	one := drain(100_000, m)
	if err := st.StartWorker(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	two := drain(200_000, 2*m)
	t.Logf("%d tasks of 100 ms, 2 at a time per worker: one worker %v, two %v (%.2f×)", m, one.Round(10*time.Millisecond), two.Round(10*time.Millisecond), two.Seconds()/one.Seconds())
	if two.Seconds() > 0.6*one.Seconds() {
		t.Errorf("two workers took %v, one %v: more than 0.6×", two, one)
	}
}

// TestTraceThroughTheQueue: one trace, read back from Jaeger, goes from
// service1's POST /users through service2's insert and publish, across the
// queue, to the worker's task and its write; the worker's log lines carry
// the request ID and the trace.
func TestTraceThroughTheQueue(t *testing.T) {
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "NATS_SERVER_BIN", "OTELCOL_BIN", "JAEGER_BIN")})
	r := call(t, "POST", st.Service1.URL()+"/users", `{"first_name":"grace","last_name":"hopper"}`,
		map[string]string{"Content-Type": "application/json", requestid.Header: "e2e-queue-trace"})
	if r.status != 201 {
		t.Fatalf("POST /users: %d %s", r.status, r.body)
	}
	tid := traceOf(t, r)
	var spans map[string]otlptest.Span
	if _, ok := poll(30*time.Second, 300*time.Millisecond, func() bool {
		spans = map[string]otlptest.Span{}
		for _, s := range jaegerTrace(t, st.Jaeger.URL(), tid) {
			spans[s.Service+" "+s.Name] = s
		}
		_, ok := spans["worker tasks.welcome process"]
		return ok
	}); !ok {
		t.Fatalf("no worker span in trace %s: %v", tid, spans)
	}
	time.Sleep(2 * time.Second) // the worker's DB span may come in a later batch
	spans = map[string]otlptest.Span{}
	byID := map[string]otlptest.Span{}
	for _, s := range jaegerTrace(t, st.Jaeger.URL(), tid) {
		spans[s.Service+" "+s.Name] = s
		byID[s.SpanID] = s
	}
	pub, proc := spans["service2 tasks.welcome publish"], spans["worker tasks.welcome process"]
	if pub.Kind != "SPAN_KIND_PRODUCER" || proc.Kind != "SPAN_KIND_CONSUMER" || proc.ParentSpanID != pub.SpanID ||
		proc.Attrs["request_id"] != "e2e-queue-trace" || pub.Attrs["messaging.message.id"] == "" {
		t.Errorf("publish %+v\nprocess %+v\nwant a producer span, and the consumer span its child with the request ID", pub, proc)
	}
	// The publish hangs under the request that recorded the task.
	if parent, ok := byID[pub.ParentSpanID]; !ok || parent.Service != "service2" {
		t.Errorf("the publish's parent %q is not a span of service2's request (%v)", pub.ParentSpanID, parent)
	}
	var write bool
	for _, s := range byID {
		write = write || (s.Service == "worker" && s.ParentSpanID == proc.SpanID && strings.Contains(s.Attrs["db.query.text"], "welcome_messages"))
	}
	if !write {
		t.Errorf("no DB write of welcome_messages under the worker's span: %v", spans)
	}
	if _, ok := proc.Attrs["task.wait_ms"]; !ok {
		t.Errorf("the consumer span does not say how long the task waited: %v", proc.Attrs)
	}
	lines := logtest.Parse(t, st.Workers[0].Output())
	if got := logtest.Find(lines, map[string]any{"msg": "welcome message sent", "request_id": "e2e-queue-trace", "trace_id": tid}); len(got) != 1 {
		t.Errorf("the worker's line for the task: %v", got)
	}
	t.Logf("trace %s: %d spans across service1, service2 and the worker", tid, len(byID))
}

// TestNATSProxyDown: make chaos-nats-down's experiment, through toxiproxy
// on the NATS hop (service2's relay and the worker both lose NATS) for
// 30 s: every create answers 201, and after chaos-reset every task is done
// once. The outage is logged once per dependency when it goes and once when
// it is back, with its length, and nothing else is logged above INFO: not
// a line per relay pass, fetch or reconnect (about 30 each).
func TestNATSProxyDown(t *testing.T) {
	// No metrics: this stack runs no statsd_exporter, and every service's
	// sends to nowhere would fail and say so, another outage than this one.
	st, _ := startStackWith(t, devstack.Options{Telemetry: tools(t, "NATS_SERVER_BIN"), Chaos: devstack.ChaosOptions{Enabled: true},
		Env: map[string][]string{"service1": {"RATE_LIMIT_PER_CLIENT=100000", "RATE_LIMIT_GLOBAL=100000", "STATSD_ADDR=off"},
			"service2": {"STATSD_ADDR=off"}, "worker": {"TASK_LATENCY=20ms", "STATSD_ADDR=off"}}})
	for _, p := range []*toxiclient.Proxy{st.Chaos.NATS, st.Chaos.WorkerNATS} {
		p.Enabled = false
		if err := p.Save(); err != nil {
			t.Fatal(err)
		}
	}
	cut := time.Now()
	const n = 40
	if s := createUsers(t, st, "e2e-natsproxy", n, 50*time.Millisecond); s[201] != n {
		t.Errorf("creates with NATS cut off: %v, want %d × 201", s, n)
	}
	if got := welcomeCount(t, st); got != 0 {
		t.Errorf("%d welcome messages while NATS was cut off", got)
	}
	const outage = 30 * time.Second
	time.Sleep(time.Until(cut.Add(outage)))
	if err := st.Chaos.Reset(); err != nil {
		t.Fatal(err)
	}
	took := exactly(t, st, n, 60*time.Second)
	t.Logf("every task done %v after chaos-reset", took.Round(100*time.Millisecond))
	for _, p := range []*devstack.Process{st.Service2, st.Workers[0]} {
		checkOutageLoggedOnce(t, p, outage)
	}
}

// checkOutageLoggedOnce: p's lines above INFO are outage lines only; each
// dependency that went has one down line, no reminder (the outage was
// shorter than a minute) and one back line whose length is about outage;
// NATS is among them.
func checkOutageLoggedOnce(t *testing.T, p *devstack.Process, outage time.Duration) {
	t.Helper()
	type counts struct {
		down, still, back int
		downFor           time.Duration
	}
	deps := map[string]*counts{}
	var loud []string
	for _, l := range logtest.Parse(t, p.Output()) {
		dep := l.Str("dependency")
		if deps[dep] == nil && dep != "" {
			deps[dep] = &counts{}
		}
		switch l.Str("msg") {
		case "dependency down":
			deps[dep].down++
		case "dependency still down":
			deps[dep].still++
		case "dependency back":
			deps[dep].back++
			deps[dep].downFor, _ = time.ParseDuration(l.Str("down_for"))
		default:
			if l["level"] != "INFO" && l["level"] != "DEBUG" {
				loud = append(loud, l.Str("level")+" "+l.Str("msg"))
			}
		}
	}
	if len(loud) > 0 {
		t.Errorf("%s: %d lines above INFO that are not outage lines, during a %v outage: %v", p.Name, len(loud), outage, loud)
	}
	if deps["nats"] == nil {
		t.Errorf("%s: losing NATS was not logged: %v", p.Name, deps)
	}
	for dep, c := range deps {
		t.Logf("%s: %s: %d down, %d still down, %d back after %v", p.Name, dep, c.down, c.still, c.back, c.downFor)
		if c.down != 1 || c.still != 0 || c.back != 1 {
			t.Errorf("%s: %s: %d down, %d still down, %d back lines over a %v outage; want 1, 0, 1", p.Name, dep, c.down, c.still, c.back, outage)
		}
		if c.downFor < outage/2 || c.downFor > outage+30*time.Second {
			t.Errorf("%s: %s: back after %v, want about %v", p.Name, dep, c.downFor, outage)
		}
	}
}
