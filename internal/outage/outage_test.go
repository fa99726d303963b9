package outage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/failready/failready/internal/outage"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type line struct {
	Level      string `json:"level"`
	Msg        string `json:"msg"`
	Dependency string `json:"dependency"`
	DownFor    string `json:"down_for"`
	Failures   int    `json:"failures"`
	SinceLast  int    `json:"failures_since_last_line"`
	Error      string `json:"error"`
}

func lines(t *testing.T, b *bytes.Buffer) []line {
	t.Helper()
	var out []line
	dec := json.NewDecoder(b)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func newLog(name string) (*outage.Log, *clock, *bytes.Buffer) {
	var buf bytes.Buffer
	c := &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			a.Key = "level"
		}
		return a
	}})
	return outage.New(name, outage.Options{Logger: slog.New(h), Now: c.Now}), c, &buf
}

// outageOf fails once a second for d, then succeeds once a second for 5 s.
func outageOf(l *outage.Log, c *clock, d time.Duration) {
	ctx := context.Background()
	for range 5 {
		l.Up(ctx)
		c.Add(time.Second)
	}
	for i := time.Duration(0); i < d; i += time.Second {
		l.Failed(ctx, errors.New("nats: no servers available for connection"))
		c.Add(time.Second)
	}
	for range 5 {
		l.Report(ctx, nil)
		c.Add(time.Second)
	}
}

// TestThirtySecondOutageIsTwoLines: a loop that tries once a second through
// a 30 s outage writes one down line and one back line, not 30.
func TestThirtySecondOutageIsTwoLines(t *testing.T) {
	l, c, buf := newLog("nats")
	outageOf(l, c, 30*time.Second)
	got := lines(t, buf)
	if len(got) != 2 {
		t.Fatalf("%d lines over a 30 s outage, want 2 (down, back): %+v", len(got), got)
	}
	if d := got[0]; d.Msg != outage.MsgDown || d.Level != "WARN" || d.Dependency != "nats" || d.Error != "nats: no servers available for connection" {
		t.Errorf("down line: %+v", d)
	}
	if b := got[1]; b.Msg != outage.MsgBack || b.Level != "INFO" || b.Dependency != "nats" || b.DownFor != "30s" || b.Failures != 30 {
		t.Errorf("back line: %+v, want down_for 30s after 30 failures", b)
	}
}

// TestLongOutageRemindsOnceAMinute: 150 s away is a down line, a reminder
// at 60 s and at 120 s, each with the failures since the last line, and
// the back line.
func TestLongOutageRemindsOnceAMinute(t *testing.T) {
	l, c, buf := newLog("mysql")
	outageOf(l, c, 150*time.Second)
	got := lines(t, buf)
	want := []string{outage.MsgDown, outage.MsgStillDown, outage.MsgStillDown, outage.MsgBack}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %v: %+v", len(got), want, got)
	}
	for i, w := range want {
		if got[i].Msg != w {
			t.Errorf("line %d: %q, want %q", i, got[i].Msg, w)
		}
	}
	if got[1].DownFor != "1m0s" || got[1].SinceLast != 60 || got[2].DownFor != "2m0s" || got[2].SinceLast != 60 {
		t.Errorf("reminders: %+v, %+v; want 1m0s and 2m0s, 60 failures each", got[1], got[2])
	}
	if got[3].DownFor != "2m30s" || got[3].Failures != 150 {
		t.Errorf("back: %+v", got[3])
	}
}

// TestEachOutageIsItsOwn: a second outage starts from scratch (its own down
// line, its own duration and count), and up-to-up writes nothing.
func TestEachOutageIsItsOwn(t *testing.T) {
	l, c, buf := newLog("nats")
	outageOf(l, c, 3*time.Second)
	outageOf(l, c, 7*time.Second)
	got := lines(t, buf)
	if len(got) != 4 || got[2].Msg != outage.MsgDown || got[3].DownFor != "7s" || got[3].Failures != 7 {
		t.Fatalf("two outages: %+v", got)
	}
	if down, _ := l.Down(); down {
		t.Error("Down after the back line")
	}
}

// TestConcurrentFailuresWriteOneDownLine: many goroutines failing at once
// (replicas of a fetch loop) still write one down line.
func TestConcurrentFailuresWriteOneDownLine(t *testing.T) {
	l, c, buf := newLog("nats")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { l.Failed(context.Background(), errors.New("x")) })
	}
	wg.Wait()
	c.Add(time.Second)
	if down, since := l.Down(); !down || !since.Before(c.Now()) {
		t.Errorf("Down: %v since %v", down, since)
	}
	l.Up(context.Background())
	got := lines(t, buf)
	if len(got) != 2 || got[1].Failures != 50 {
		t.Fatalf("50 concurrent failures: %+v", got)
	}
}

// TestZeroOptions: a nil logger discards, and the defaults hold.
func TestZeroOptions(t *testing.T) {
	l := outage.New("x", outage.Options{})
	l.Failed(context.Background(), nil)
	if down, _ := l.Down(); !down {
		t.Error("a failure with a nil error is still a failure")
	}
	l.Up(context.Background())
}
