// Package statsdtest is a DogStatsD receiver for tests: a real UDP socket on
// loopback that keeps every line it receives, parsed.
//
// Depends on: the standard library only; for tests (it imports testing).
package statsdtest

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Line is one received metric line.
type Line struct {
	Name  string
	Value float64
	Type  string // ms, c, g, h, d
	Tags  map[string]string
	Raw   string
}

// Receiver listens on a loopback UDP port.
type Receiver struct {
	conn  net.PacketConn
	mu    sync.Mutex
	lines []Line
	done  chan struct{}
}

// Listen starts a receiver, closed when the test ends.
func Listen(t testing.TB) *Receiver {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{conn: conn, done: make(chan struct{})}
	go r.read()
	t.Cleanup(func() { conn.Close(); <-r.done })
	return r
}

// Addr is the receiver's host:port.
func (r *Receiver) Addr() string { return r.conn.LocalAddr().String() }

func (r *Receiver) read() {
	defer close(r.done)
	buf := make([]byte, 65536)
	for {
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		for _, raw := range strings.Split(string(buf[:n]), "\n") {
			if l, ok := Parse(raw); ok {
				r.mu.Lock()
				r.lines = append(r.lines, l)
				r.mu.Unlock()
			}
		}
	}
}

// Parse parses one DogStatsD line: name:value|type[|@rate][|#k:v,...].
func Parse(raw string) (Line, bool) {
	parts := strings.Split(raw, "|")
	if len(parts) < 2 {
		return Line{}, false
	}
	name, val, ok := strings.Cut(parts[0], ":")
	if !ok {
		return Line{}, false
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return Line{}, false
	}
	l := Line{Name: name, Value: v, Type: parts[1], Tags: map[string]string{}, Raw: raw}
	for _, p := range parts[2:] {
		if tags, ok := strings.CutPrefix(p, "#"); ok {
			for _, tag := range strings.Split(tags, ",") {
				k, v, _ := strings.Cut(tag, ":")
				l.Tags[k] = v
			}
		}
	}
	return l, true
}

// Lines returns the lines received so far.
func (r *Receiver) Lines() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Line(nil), r.lines...)
}

// Named returns the lines received so far with that name.
func (r *Receiver) Named(name string) []Line {
	var out []Line
	for _, l := range r.Lines() {
		if l.Name == name {
			out = append(out, l)
		}
	}
	return out
}

// WaitFor waits until at least n lines named name have arrived and returns
// them; it fails the test after timeout.
func (r *Receiver) WaitFor(t testing.TB, name string, n int, timeout time.Duration) []Line {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.Named(name)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d %s lines within %s, want %d; all lines: %v", len(got), name, timeout, n, r.Lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Settle waits until no line has arrived for 100ms (at most 5s), so that the
// packets a client flushed on Close have been read.
func (r *Receiver) Settle() {
	deadline := time.Now().Add(5 * time.Second)
	n := -1
	for time.Now().Before(deadline) {
		m := len(r.Lines())
		if m == n {
			return
		}
		n = m
		time.Sleep(100 * time.Millisecond)
	}
}
