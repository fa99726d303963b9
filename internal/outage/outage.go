// Package outage logs a dependency's outage as three kinds of line: once
// when it goes, at most once a minute while it stays away, and once when
// it comes back, with how long it was gone. A loop that retries a dead
// broker every second and logs each failure writes 3 600 lines an hour
// that say one thing, and buries the lines that matter; this one writes
// about 60, and the "back" line says how long the outage lasted.
//
// It is for background loops (a relay, a consumer's fetch, a reconnect),
// not for requests: a failed request keeps its own line, every time.
//
// Depends on: the standard library only (log/slog).
package outage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The messages of the three lines. The dependency is an attribute, so one
// query finds every outage (LogQL, the attributes as Loki's structured
// metadata): {service_name="service2"} | dependency=~".+".
const (
	MsgDown      = "dependency down"
	MsgStillDown = "dependency still down"
	MsgBack      = "dependency back"
)

// Options configures a Log. The zero value logs nothing.
type Options struct {
	Logger *slog.Logger
	// Remind is how often a still-down line is written while the
	// dependency stays away (default: a minute).
	Remind time.Duration
	// Now is the clock (default time.Now); tests pass their own.
	Now func() time.Time
}

// Log is one dependency's outage state. Its methods are safe for
// concurrent use.
type Log struct {
	name string
	o    Options

	mu        sync.Mutex
	since     time.Time // when it went; zero while it is up
	lastLine  time.Time // the last down or still-down line
	failures  int       // failed attempts since it went
	unwritten int       // failed attempts since the last line
}

// New returns the Log of the dependency name ("nats", "mysql", "outbox
// relay"), up to begin with.
func New(name string, o Options) *Log {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Remind <= 0 {
		o.Remind = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Log{name: name, o: o}
}

// Failed records a failed attempt: the first after an Up (or New) writes
// the down line; later ones write a still-down line when Remind has passed
// since the last line, with the attempts since then and the latest error.
func (l *Log) Failed(ctx context.Context, err error) {
	msg := "unknown"
	if err != nil {
		msg = err.Error()
	}
	now := l.o.Now()
	l.mu.Lock()
	l.failures++
	l.unwritten++
	switch {
	case l.since.IsZero():
		l.since, l.lastLine, l.unwritten = now, now, 0
		l.mu.Unlock()
		l.o.Logger.WarnContext(ctx, MsgDown, "dependency", l.name, "error", msg)
	case now.Sub(l.lastLine) >= l.o.Remind:
		down, n := now.Sub(l.since), l.unwritten
		l.lastLine, l.unwritten = now, 0
		l.mu.Unlock()
		l.o.Logger.WarnContext(ctx, MsgStillDown, "dependency", l.name, "down_for", down.Round(time.Second).String(),
			"failures_since_last_line", n, "error", msg)
	default:
		l.mu.Unlock()
	}
}

// Up records a successful attempt: after an outage it writes the back line
// with how long the dependency was away and how many attempts failed; while
// it is up it writes nothing. Call it on every success: it costs a lock.
func (l *Log) Up(ctx context.Context) {
	l.mu.Lock()
	if l.since.IsZero() {
		l.mu.Unlock()
		return
	}
	down, n := l.o.Now().Sub(l.since), l.failures
	l.since, l.failures, l.unwritten = time.Time{}, 0, 0
	l.mu.Unlock()
	l.o.Logger.InfoContext(ctx, MsgBack, "dependency", l.name, "down_for", down.Round(time.Millisecond).String(), "failures", n)
}

// Report is Up for a nil error and Failed for any other: for a loop that
// has one error per attempt.
func (l *Log) Report(ctx context.Context, err error) {
	if err == nil {
		l.Up(ctx)
		return
	}
	l.Failed(ctx, err)
}

// Down reports whether the dependency is away, and since when.
func (l *Log) Down() (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.since.IsZero(), l.since
}
