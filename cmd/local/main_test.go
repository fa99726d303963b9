package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
)

func TestCheckFreeNamesEveryTakenPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	if err := checkFree([]namedAddr{{"statsd-udp", busyUDP.LocalAddr().String(), "udp"}}); err == nil || !strings.Contains(err.Error(), "-statsd-udp") {
		t.Fatalf("a taken UDP port: %v", err)
	}

	if err := checkFree([]namedAddr{{"service1", freeAddr, ""}, {"service2", "127.0.0.1:0", ""}}); err != nil {
		t.Fatalf("free ports refused: %v", err)
	}
	err = checkFree([]namedAddr{{"service1", freeAddr, ""}, {"prometheus", busy.Addr().String(), ""}})
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()+" (prometheus)") ||
		!strings.Contains(err.Error(), "-prometheus 127.0.0.1:0") || strings.Contains(err.Error(), "service1") {
		t.Fatalf("a taken port: %v", err)
	}
}

// TestStateCleansUpAfterAKilledRunner: a runner killed with SIGKILL leaves
// its state; the next one kills what it left running (matched by
// executable, so that a reused pid is spared), removes its temporary
// folder, and holds the lock against a third.
func TestStateCleansUpAfterAKilledRunner(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := st.setWorkdir(work); err != nil {
		t.Fatal(err)
	}
	left := exec.Command("sleep", "60")
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	defer left.Process.Kill()
	st.setPid("service2", left.Process.Pid)
	// A pid file whose process runs another program is not killed.
	spared := exec.Command("sh", "-c", "sleep 60")
	if err := spared.Start(); err != nil {
		t.Fatal(err)
	}
	defer spared.Process.Kill()
	if err := os.WriteFile(filepath.Join(dir, "pids", "service1"), fmt.Appendf(nil, "%d /no/such/exe\n", spared.Process.Pid), 0o644); err != nil {
		t.Fatal(err)
	}
	st.lock.Close() // what a SIGKILL does to the lock; nothing else is cleaned

	var report bytes.Buffer
	st2, err := openState(dir, &report)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.close()
	done := make(chan error, 1)
	go func() { done <- left.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("the left-over process ended with %v, want killed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the left-over process is still running")
	}
	sparedDone := make(chan error, 1)
	go func() { sparedDone <- spared.Wait() }()
	select {
	case err := <-sparedDone:
		t.Errorf("a process that is not the stack's was killed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the temporary folder is still there: %v", err)
	}
	if !strings.Contains(report.String(), "service2 running") || !strings.Contains(report.String(), work) {
		t.Errorf("report: %s", report.String())
	}
	if _, err := openState(dir, io.Discard); err == nil || !strings.Contains(err.Error(), "another make local is running") {
		t.Errorf("a second runner at once: %v", err)
	}
}

// TestLogFiles: each program's lines go to its own file, unprefixed, and to
// the terminal as they were.
func TestLogFiles(t *testing.T) {
	dir := t.TempDir()
	var term bytes.Buffer
	l := &logFiles{term: &term, dir: dir}
	for _, line := range []string{"service1| {\"msg\":\"a\"}\n", "mariadb| ready\n", "service1| {\"msg\":\"b\"}\n", "no prefix\n"} {
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	l.close()
	if b, _ := os.ReadFile(filepath.Join(dir, "service1.log")); string(b) != "{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n" {
		t.Errorf("service1.log: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mariadb.log")); string(b) != "ready\n" {
		t.Errorf("mariadb.log: %q", b)
	}
	if !strings.HasPrefix(term.String(), "service1| ") || !strings.HasSuffix(term.String(), "no prefix\n") {
		t.Errorf("terminal: %q", term.String())
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("got %q", got)
	}
}

// TestSpoolMounts: the runner unmounts the tmpfs it mounted for the spool,
// and leaves one the user mounted there alone.
func TestSpoolMounts(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	note, err := st.mountSpool()
	if err != nil {
		t.Fatal(err)
	}
	if !mounted(st.spool()) {
		devstacktest.Missing(t, "this process may not mount a tmpfs: "+note) // CI runs as root: it may
	}
	st.close()
	if mounted(st.spool()) {
		t.Fatal("the runner's own tmpfs is still mounted after close")
	}

	// The user's: mounted before the runner starts.
	if err := syscall.Mount("tmpfs", st.spool(), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(st.spool(), syscall.MNT_DETACH)
	st, err = openState(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if note, _ := st.mountSpool(); !strings.Contains(note, "you mounted") {
		t.Errorf("note %q", note)
	}
	st.close()
	if !mounted(st.spool()) {
		t.Error("the runner unmounted a filesystem the user mounted")
	}
	st, err = openState(dir, io.Discard) // as after a SIGKILL: nothing of ours to clean
	if err != nil {
		t.Fatal(err)
	}
	st.close()
	if !mounted(st.spool()) {
		t.Error("the cleanup after a killed runner unmounted the user's filesystem")
	}
}

// TestDefaultPortsBelowTheTestsFreePorts: make local's default ports are
// never among those a test's stack picks (devstack.FreePort), so that the
// walkthroughs' make local and the other e2e tests can run side by side.
func TestDefaultPortsBelowTheTestsFreePorts(t *testing.T) {
	fs, _ := newFlags()
	n := 0
	fs.VisitAll(func(fl *flag.Flag) {
		_, port, err := net.SplitHostPort(fl.DefValue)
		if err != nil {
			return // not an address
		}
		n++
		if p, err := strconv.Atoi(port); err != nil || p >= devstack.LowestFreePort {
			t.Errorf("-%s's default %s: not below %d, where the tests' free ports start", fl.Name, fl.DefValue, devstack.LowestFreePort)
		}
	})
	if n < 14 {
		t.Fatalf("%d address flags, want 14 or more", n)
	}
}

// The runner passes service1's rate limits on when the shell sets them, as
// compose does, and nothing when it does not (service1's defaults).
func TestLimitsFromEnv(t *testing.T) {
	t.Setenv("RATE_LIMIT_PER_CLIENT", "100000")
	if got := limitsFromEnv(); len(got) != 1 || got[0] != "RATE_LIMIT_PER_CLIENT=100000" {
		t.Errorf("limitsFromEnv() = %q", got)
	}
	os.Unsetenv("RATE_LIMIT_PER_CLIENT")
	if got := limitsFromEnv(); len(got) != 0 {
		t.Errorf("unset: limitsFromEnv() = %q, want nothing", got)
	}
	p := plan{}
	t.Setenv("RATE_LIMIT_GLOBAL", "5000")
	if env := p.options(&localFlags{}, ".", t.TempDir(), io.Discard, "/spool").Env["service1"]; len(env) != 1 || env[0] != "RATE_LIMIT_GLOBAL=5000" {
		t.Errorf("service1's environment: %q", env)
	}
}
