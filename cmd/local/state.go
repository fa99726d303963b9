package main

// The runner's state folder (.cache/local by default), what the Makefile
// and scripts/ read to act on the native stack as they act on compose:
//
//	lock            flock(2)ed while a runner runs: one stack at a time
//	runner.pid      the runner's process ID
//	workdir         the temporary folder (binaries, MySQL data, configs)
//	pids/NAME       each program's process ID and executable (make chaos-kill)
//	logs/NAME.log   each program's output, as on the terminal (make logs)
//	spool/          service2's spool: a 16 MiB tmpfs where mounting is
//	                allowed (make chaos-disk-full)
//	nats-url        NATS's address, which -nats may move (make
//	                chaos-poison-task, go run ./cmd/tasks)
//
// A runner killed with SIGKILL cannot clean up: its programs die with it
// (they are started with a parent-death signal), and the next runner finds
// the lock free and the state left, and removes what is left: stray
// processes, the spool mount and the temporary folder.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/failready/failready/devstack"
)

// spoolSize is the spool filesystem's size, as compose's spool volume.
const spoolSize = "16m"

type state struct {
	dir  string
	lock *os.File
}

// openState takes the state folder's lock, and cleans up after a runner
// that was killed before it could. It fails when another runner holds the
// lock.
func openState(dir string, report io.Writer) (*state, error) {
	for _, d := range []string{dir, filepath.Join(dir, "pids"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := os.ReadFile(filepath.Join(dir, "runner.pid"))
		return nil, fmt.Errorf("another make local is running (pid %s, state in %s): stop it first",
			strings.TrimSpace(string(pid)), dir)
	}
	s := &state{dir: dir, lock: f}
	if err := s.cleanStale(report); err != nil {
		s.close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "runner.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		s.close()
		return nil, err
	}
	// Fresh logs for this run.
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		_ = os.Remove(l)
	}
	return s, nil
}

// cleanStale removes what a runner killed with SIGKILL left: programs still
// running (matched by executable, so a reused pid is left alone), the spool
// mount, and the temporary folder.
func (s *state) cleanStale(report io.Writer) error {
	pids, _ := filepath.Glob(filepath.Join(s.dir, "pids", "*"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) == 2 {
			pid, _ := strconv.Atoi(fields[0])
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && pid > 0 && exe == fields[1] {
				fmt.Fprintf(report, "local| a previous runner left %s running (pid %d): killing it\n", filepath.Base(f), pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.Remove(f)
	}
	var errs []error
	if s.ownMount() && mounted(s.spool()) {
		fmt.Fprintf(report, "local| a previous runner left the spool mounted: unmounting %s\n", s.spool())
		errs = append(errs, s.unmountSpool())
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, "workdir")); err == nil {
		if wd := strings.TrimSpace(string(b)); wd != "" {
			if _, err := os.Stat(wd); err == nil {
				fmt.Fprintf(report, "local| a previous runner left its temporary folder: removing %s\n", wd)
				errs = append(errs, os.RemoveAll(wd))
			}
		}
		_ = os.Remove(filepath.Join(s.dir, "workdir"))
	}
	return errors.Join(errs...)
}

// spool is service2's spool folder.
func (s *state) spool() string { return filepath.Join(s.dir, "spool") }

// mountSpool makes the spool a small filesystem of its own where this
// process may mount one (root), so that make chaos-disk-full fills 16 MiB
// and not the machine's disk. It says what happened.
func (s *state) mountSpool() (string, error) {
	dir := s.spool()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if mounted(dir) {
		return "a filesystem you mounted: make chaos-disk-full fills it", nil
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+spoolSize); err != nil {
		return fmt.Sprintf("a plain folder (mounting a %s tmpfs: %v); make chaos-disk-full needs a small filesystem there: "+
			"run make local as root, or mount one yourself first: sudo mount -t tmpfs -o size=%s tmpfs %s", spoolSize, err, spoolSize, dir), nil
	}
	// Ours to unmount, now or after a SIGKILL; a mount of the user's is not.
	if err := os.WriteFile(s.mountMarker(), nil, 0o644); err != nil {
		return "", err
	}
	return "a " + spoolSize + " tmpfs: make chaos-disk-full fills it", nil
}

// mountMarker exists while the spool is a tmpfs this runner mounted.
func (s *state) mountMarker() string { return filepath.Join(s.dir, "spool.mounted") }

func (s *state) ownMount() bool {
	_, err := os.Stat(s.mountMarker())
	return err == nil
}

func (s *state) unmountSpool() error {
	err := syscall.Unmount(s.spool(), syscall.MNT_DETACH)
	if err == nil {
		_ = os.Remove(s.mountMarker())
	}
	return err
}

// setWorkdir records the temporary folder, for a cleanup after a SIGKILL.
func (s *state) setWorkdir(dir string) error {
	return os.WriteFile(filepath.Join(s.dir, "workdir"), []byte(dir+"\n"), 0o644)
}

// setPid records a program's process ID and executable.
func (s *state) setPid(name string, pid int) {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	_ = os.WriteFile(filepath.Join(s.dir, "pids", name), fmt.Appendf(nil, "%d %s\n", pid, exe), 0o644)
}

// setNATS records NATS's URL once it runs.
func (s *state) setNATS(url string) {
	_ = os.WriteFile(filepath.Join(s.dir, "nats-url"), []byte(url+"\n"), 0o644)
}

// close removes the run's records (the logs stay, for make logs) and
// releases the lock.
// record keeps the pid of every program of the stack, and where NATS is.
func (s *state) record(st *devstack.Stack) {
	for name, pid := range st.Programs() {
		s.setPid(name, pid)
	}
	if st.NATS != nil {
		s.setNATS(st.NATSDirectURL())
	}
}

func (s *state) close() {
	pids, _ := filepath.Glob(filepath.Join(s.dir, "pids", "*"))
	for _, f := range pids {
		_ = os.Remove(f)
	}
	if s.ownMount() {
		_ = s.unmountSpool()
	}
	_ = os.Remove(filepath.Join(s.dir, "workdir"))
	_ = os.Remove(filepath.Join(s.dir, "nats-url"))
	_ = os.Remove(filepath.Join(s.dir, "runner.pid"))
	s.lock.Close()
}

// mounted reports whether dir is a mount point (/proc/self/mountinfo).
func mounted(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && unescapeMount(f[4]) == abs {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// logFiles copies each "NAME| line" the stack writes to the terminal into
// logs/NAME.log as well, without the prefix: what make logs prints.
type logFiles struct {
	term  io.Writer
	dir   string
	mu    sync.Mutex
	files map[string]*os.File
}

func (l *logFiles) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if name, line, ok := strings.Cut(string(b), "| "); ok && name != "" && !strings.ContainsAny(name, "/ \n") {
		f := l.files[name]
		if f == nil {
			var err error
			if f, err = os.OpenFile(filepath.Join(l.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
				if l.files == nil {
					l.files = map[string]*os.File{}
				}
				l.files[name] = f
			}
		}
		if f != nil {
			_, _ = f.WriteString(line)
		}
	}
	return l.term.Write(b)
}

func (l *logFiles) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.files {
		f.Close()
	}
}
