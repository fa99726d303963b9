//go:build e2e && benchload

package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/app/tasks"
	"github.com/failready/failready/internal/consumer"
	"github.com/failready/failready/internal/requestid"
)

// TestWorkerThroughput (make bench-worker): the queue tier's own costs,
// against the real nats-server.
//
//   - The consumer with a no-op task, one instance (internal/consumer, as
//     the worker runs it: fetches of the free slots, a confirmed ack per
//     task), on a backlog of 10 000 tasks: tasks a second.
//   - From a create's commit to its task in JetStream: the outbox relay's
//     delay, from the Task-Created header (written in the transaction) to
//     the stream's timestamp of the message, over 400 creates at 40/s.
func TestWorkerThroughput(t *testing.T) {
	st := startQueueStack(t, 1)
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	// Commit → publish: creates through service2 with the worker stopped,
	// so that the tasks stay in the stream to be read back.
	if err := st.Workers[0].Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	const creates = 400
	for i := range creates {
		r := call(t, "POST", st.Service2.URL()+"/users", fmt.Sprintf(`{"first_name":"b%d","last_name":"bench"}`, i),
			map[string]string{"Content-Type": "application/json", requestid.Header: fmt.Sprintf("bench-outbox-%d", i)})
		if r.status != 201 {
			t.Fatalf("create %d: %d", i, r.status)
		}
		time.Sleep(25 * time.Millisecond)
	}
	stream, err := js.Stream(ctx, tasks.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	if _, ok := poll(30*time.Second, 100*time.Millisecond, func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs >= creates
	}); !ok {
		t.Fatal("the tasks did not all reach the stream within 30 s")
	}
	info, _ := stream.Info(ctx)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if created, err := time.Parse(time.RFC3339Nano, m.Header.Get(tasks.HeaderCreated)); err == nil {
			delays = append(delays, m.Time.Sub(created))
		}
	}
	if len(delays) != creates {
		t.Fatalf("%d tasks in the stream, want %d", len(delays), creates)
	}
	slices.Sort(delays)
	q := func(p float64) time.Duration { return delays[int(p*float64(len(delays)-1))] }
	verdict := "met"
	if q(0.99) > 50*time.Millisecond {
		verdict = "missed"
	}
	t.Logf("commit → in JetStream, %d creates at 40/s: p50 %v, p99 %v, max %v (target p99 ≤ 50 ms: %s)",
		len(delays), q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), delays[len(delays)-1].Round(10*time.Microsecond), verdict)

	// The consumer with no-op work, on a stream of its own.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	const backlog = 10_000
	fill := func() {
		for i := range backlog {
			if _, err := js.PublishAsync("bench.noop", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			t.Fatal("publishing the backlog took over a minute")
		}
	}
	cfg := tasks.WelcomeConsumer(30*time.Second, 1000) // the worker's, on the bench subject
	cfg.Durable, cfg.FilterSubject = "bench", "bench.noop"
	cons, err := js.CreateOrUpdateConsumer(ctx, "BENCH", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, conc := range []int{8, 64} {
		fill() // a backlog of its own; what the last run left is a few tasks at most
		var done atomic.Int64
		c := consumer.New(cons, func(context.Context, jetstream.Msg) error { return nil }, consumer.Options{Concurrency: conc,
			Observe: func(consumer.Outcome) { done.Add(1) }})
		cctx, stop := context.WithCancel(ctx)
		ran := make(chan struct{})
		start := time.Now()
		go func() { c.Run(cctx); close(ran) }()
		target := int64(backlog)
		if _, ok := poll(2*time.Minute, 10*time.Millisecond, func() bool { return done.Load() >= target }); !ok {
			t.Fatalf("%d of %d tasks within 2 minutes", done.Load(), target)
		}
		took := time.Since(start)
		stop()
		<-ran
		rate := float64(done.Load()) / took.Seconds()
		verdict := "met"
		if rate < 1000 {
			verdict = "missed"
		}
		t.Logf("one consumer, %d at once, no-op tasks: %d in %v: %.0f tasks/s (target 1 000: %s)", conc, done.Load(), took.Round(time.Millisecond), rate, verdict)
	}
}
