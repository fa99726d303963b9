// Package logtest captures JSON log lines in tests and finds lines by field.
//
// Depends on: the standard library only; for tests (it imports testing).
package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is an io.Writer safe for concurrent use, for a logger's output.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Line is one decoded JSON log line.
type Line map[string]any

// Str returns the field as a string ("" when absent or not a string).
func (l Line) Str(key string) string {
	s, _ := l[key].(string)
	return s
}

// Lines decodes every line written so far; a line that is not one JSON
// object fails the test, since every line a service writes must be one.
func (b *Buffer) Lines(t testing.TB) []Line {
	t.Helper()
	return Parse(t, b.String())
}

// Parse decodes newline-separated JSON objects.
func Parse(t testing.TB, s string) []Line {
	t.Helper()
	var out []Line
	for _, raw := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if raw == "" {
			continue
		}
		var l Line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log line is not one JSON object: %v\n%s", err, raw)
		}
		out = append(out, l)
	}
	return out
}

// Find returns the lines whose fields equal every key/value pair of match.
func Find(lines []Line, match map[string]any) []Line {
	var out []Line
next:
	for _, l := range lines {
		for k, v := range match {
			if l[k] != v {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// WaitListening waits for the "listening" line a service logs when its
// listener is open, and returns the address in it.
func WaitListening(t testing.TB, b *Buffer, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, raw := range strings.Split(b.String(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(raw), &l) == nil && l.Msg == "listening" {
				return l.Addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no \"listening\" line within %s; output:\n%s", timeout, b.String())
	return ""
}

// StartRun runs a service's run function in the background, its stdout a
// Buffer, the way the services' tests start them (Mat Ryer's run pattern):
// it waits for the "listening" line and returns the base URL, the log, and a
// stop func that cancels run's context (as SIGTERM does) and returns run's
// error. stop may be called more than once; the test's cleanup calls it too.
func StartRun(t testing.TB, run func(ctx context.Context, stdout io.Writer) error) (base string, out *Buffer, stop func() error) {
	t.Helper()
	out = &Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, out) }()
	base = "http://" + WaitListening(t, out, 5*time.Second)
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return base, out, stop
}
