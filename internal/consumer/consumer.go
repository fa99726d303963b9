// Package consumer runs a JetStream pull consumer the way a worker should:
// a bounded number of tasks at once, every task acknowledged by decision
// (done: Ack; failed for now: Nak with a growing delay; can never succeed,
// or out of deliveries: to the dead-letter stream with the reason, then
// Term), a liveness signal that means "making progress", and a shutdown
// that stops fetching, lets the tasks in flight finish within a bound and
// hands the rest back (Nak) for another worker.
//
// The worker counts deliveries itself (the consumer's own MaxDeliver is
// left unlimited): JetStream stops delivering a task past MaxDeliver with
// only an advisory to say so, while here the last allowed delivery that
// fails is dead-lettered, kept and visible, and a task whose worker died
// before deciding is delivered again.
//
// Depends on: github.com/nats-io/nats.go (its jetstream package),
// internal/outage (NATS away is logged once, not per fetch).
//
// Tests use: go.uber.org/goleak.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/internal/outage"
)

// ErrPoison marks a task that can never succeed: it is dead-lettered at
// once, not retried. Wrap it (fmt.Errorf("%w: ...", consumer.ErrPoison)).
var ErrPoison = errors.New("poison task")

// Decision is what becomes of a delivered task.
type Decision int

// The decisions.
const (
	Ack        Decision = iota // done
	Retry                      // Nak with a delay: delivered again later
	DeadLetter                 // kept in the dead-letter stream, then Term
	GiveBack                   // Nak at once: the worker is stopping
)

func (d Decision) String() string {
	return [...]string{"ack", "retry", "dead_letter", "give_back"}[d]
}

// Decide is the rule: nil is done; a poison error is dead at once; any
// other error is retried until the task has been delivered maxDeliver
// times, then dead; a task cut short by the worker's shutdown is given
// back.
func Decide(err error, delivered uint64, maxDeliver int, stopping bool) Decision {
	switch {
	case err == nil:
		return Ack
	case errors.Is(err, ErrPoison):
		return DeadLetter
	case stopping && errors.Is(err, context.Canceled):
		return GiveBack
	case delivered >= uint64(maxDeliver):
		return DeadLetter
	default:
		return Retry
	}
}

// Backoff is the delay before delivery n+1 after n failed ones: 1 s,
// doubling, at most 30 s.
func Backoff(delivered uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < delivered && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Handler does one task. Its context carries no deadline of its own; it
// ends when the worker's shutdown bound is reached.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Outcome is reported for every task handled.
type Outcome struct {
	Subject   string
	Decision  Decision
	Err       error
	Delivered uint64 // this delivery's number: 1 the first time
	Took      time.Duration
	Reason    string // the dead-letter reason
}

// Options of a consumer; zero values take the defaults.
type Options struct {
	Concurrency int           // tasks at once: 4
	MaxDeliver  int           // deliveries before a failing task is dead: 5
	FetchWait   time.Duration // how long one fetch waits for tasks: 1 s
	// StuckAfter: the consumer is not live when no task has finished and no
	// fetch has come back empty for this long (30 s): its tasks are stuck.
	StuckAfter time.Duration
	// ShutdownTimeout bounds how long Run waits, once ctx ends, for the
	// tasks in flight (10 s); then their contexts end and they are given
	// back.
	ShutdownTimeout time.Duration
	// DeadLetter keeps a dead task with its reason (publish it to the
	// dead-letter stream). When it fails, the task is retried instead:
	// never lost.
	DeadLetter func(ctx context.Context, msg jetstream.Msg, reason string, delivered uint64) error
	Logger     *slog.Logger
	Observe    func(Outcome) // metrics
}

// Consumer runs a handler over a JetStream consumer's tasks.
type Consumer struct {
	cons     jetstream.Consumer
	handle   Handler
	o        Options
	slots    chan struct{}
	inFlight atomic.Int64
	progress atomic.Int64 // unix nanoseconds of the last progress
	stopping atomic.Bool
	fetching *outage.Log // failing fetches (NATS away): logged once, once a minute, and when they work again
}

// New returns a consumer of cons.
func New(cons jetstream.Consumer, h Handler, o Options) *Consumer {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 5
	}
	if o.FetchWait <= 0 {
		o.FetchWait = time.Second
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 30 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{cons: cons, handle: h, o: o, slots: make(chan struct{}, o.Concurrency),
		fetching: outage.New("task fetch", outage.Options{Logger: o.Logger})}
	c.progressed()
	return c
}

func (c *Consumer) progressed() { c.progress.Store(time.Now().UnixNano()) }

// Live reports whether the consumer is making progress: a task finished,
// or a fetch came back (with nothing to do, or failing: NATS away is not
// the process's fault), within StuckAfter. What fails it is every slot
// held by a task that does not finish.
func (c *Consumer) Live() error {
	if since := time.Since(time.Unix(0, c.progress.Load())); since > c.o.StuckAfter {
		return errors.New("no task finished and no fetch came back for " + since.Round(time.Millisecond).String())
	}
	return nil
}

// InFlight is how many tasks are being handled.
func (c *Consumer) InFlight() int { return int(c.inFlight.Load()) }

// Run fetches and handles tasks until ctx ends, then stops fetching, waits
// up to ShutdownTimeout for the tasks in flight, gives back the rest, and
// returns.
func (c *Consumer) Run(ctx context.Context) {
	// The tasks' context outlives ctx by the shutdown bound.
	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	var wg sync.WaitGroup
	for ctx.Err() == nil {
		// A free slot first, so that a fetch asks only for what can start.
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1
	fill:
		for free < cap(c.slots) {
			select {
			case c.slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}
		fctx, cancel := context.WithTimeout(ctx, c.o.FetchWait) // a stop ends the wait at once
		batch, err := c.cons.Fetch(free, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				wg.Go(func() {
					defer func() { <-c.slots }()
					c.run(taskCtx, msg)
				})
			}
			err = batch.Error()
		}
		cancel()
		for range free - got {
			<-c.slots // the slots nothing took
		}
		reached := got > 0 || err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages)
		if reached {
			c.fetching.Up(ctx)
		}
		switch {
		case got == 0 && reached:
			c.progressed() // nothing to do is progress too
		case err != nil && ctx.Err() == nil:
			// NATS away: the loop turns, so it is live (a restart would not
			// bring NATS back); try again shortly, without spinning.
			c.progressed()
			c.fetching.Failed(ctx, err)
			select { // half the liveness window at most
			case <-time.After(min(time.Second, c.o.StuckAfter/2)):
			case <-ctx.Done():
			}
		}
	}
	c.stopping.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.o.ShutdownTimeout):
		cancelTasks() // the handlers see their context end: given back
		<-done
	}
}

// run handles one task and acts on the decision.
func (c *Consumer) run(ctx context.Context, msg jetstream.Msg) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	start := time.Now()
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	err := c.handle(ctx, msg)
	out := Outcome{Subject: msg.Subject(), Err: err, Delivered: delivered, Took: time.Since(start),
		Decision: Decide(err, delivered, c.o.MaxDeliver, c.stopping.Load())}
	// The acknowledgement must get through even if the shutdown bound has
	// cut the handler short.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch out.Decision {
	case Ack:
		err = msg.DoubleAck(actx) // confirmed: a lost ack would redeliver a done task
	case Retry:
		err = msg.NakWithDelay(Backoff(delivered))
	case GiveBack:
		err = msg.Nak()
	case DeadLetter:
		out.Reason = err.Error()
		if c.o.DeadLetter == nil {
			err = msg.TermWithReason(out.Reason)
		} else if err = c.o.DeadLetter(actx, msg, out.Reason, delivered); err != nil {
			c.o.Logger.ErrorContext(ctx, "dead-lettering a task failed: it is retried", "error", err.Error())
			out.Decision = Retry
			err = msg.NakWithDelay(Backoff(delivered))
		} else {
			err = msg.TermWithReason(out.Reason)
		}
	}
	if err != nil {
		// The task is not lost: unacknowledged, it comes back after AckWait.
		c.o.Logger.WarnContext(ctx, "acknowledging a task failed", "decision", out.Decision.String(), "error", err.Error())
	}
	c.progressed()
	if c.o.Observe != nil {
		c.o.Observe(out)
	}
}
