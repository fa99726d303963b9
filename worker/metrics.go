// The worker's metrics: the talk's slide on monitoring workers (task
// latency, task errors, queue size) and what a queue adds (redeliveries,
// dead letters, tasks in progress). Names: internal/metrics/catalog.go.

package main

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/internal/consumer"
	"github.com/failready/failready/internal/metrics"
)

type outcomeKey struct{ task, outcome string }

// observe reports every handled delivery (consumer.Options.Observe).
func observe(m *metrics.Client) func(consumer.Outcome) {
	byOutcome := metrics.NewTags(100, func(k outcomeKey) []string { return []string{"task:" + k.task, "outcome:" + k.outcome} })
	byKind := metrics.NewTags(100, func(k outcomeKey) []string { return []string{"task:" + k.task, "kind:" + k.outcome} })
	byReason := metrics.NewTags(100, func(k outcomeKey) []string { return []string{"task:" + k.task, "reason:" + k.outcome} })
	byTask := metrics.NewTags(100, func(task string) []string { return []string{"task:" + task} })
	return func(o consumer.Outcome) {
		m.Timing(metrics.TaskDuration, o.Took, byOutcome.Get(outcomeKey{o.Subject, o.Decision.String()}))
		poison := errors.Is(o.Err, consumer.ErrPoison)
		if o.Err != nil && o.Decision != consumer.GiveBack {
			kind := "transient"
			if poison {
				kind = "poison"
			}
			m.Count(metrics.TaskErrors, 1, byKind.Get(outcomeKey{o.Subject, kind}))
		}
		if o.Delivered > 1 {
			m.Count(metrics.TaskRedeliveries, 1, byTask.Get(o.Subject))
		}
		if o.Decision == consumer.DeadLetter {
			reason := "exhausted"
			if poison {
				reason = "poison"
			}
			m.Count(metrics.TaskDeadLettered, 1, byReason.Get(outcomeKey{o.Subject, reason}))
		}
	}
}

// queueCollector samples, every report interval, the tasks in progress
// here and the consumer's queue: not yet delivered (the queue size, what
// autoscaling follows) and delivered but not acknowledged.
func queueCollector(c *consumer.Consumer, cons jetstream.Consumer, name string) metrics.Collector {
	tags := []string{"consumer:" + name}
	return func(m *metrics.Client) {
		m.Gauge(metrics.TaskInProgress, float64(c.InFlight()), nil)
		// Under the report interval (5 s), and long enough for a slow
		// link to NATS: the queue matters most when the worker is slow.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		info, err := cons.Info(ctx)
		if err != nil {
			return // NATS away: no sample, rather than a false zero
		}
		m.Gauge(metrics.QueuePending, float64(info.NumPending), tags)
		m.Gauge(metrics.QueueAckPending, float64(info.NumAckPending), tags)
	}
}
