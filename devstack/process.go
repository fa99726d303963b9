// Process supervision: start a program, keep its output line by line, know
// when it listens and when it is ready, stop it with SIGTERM and judge its
// exit, and read its resource use from /proc (for the load benchmark).

package devstack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one of the stack's programs, running as a host process, with its
// stdout kept line by line for assertions and copied to a log writer.
type Process struct {
	Name string
	Addr string // from its "listening" log line

	cmd   *exec.Cmd
	done  chan struct{}
	err   error // of Wait, once done is closed
	mu    sync.Mutex
	lines []string

	// restart starts the same program again, the same way (Supervise).
	restart func(context.Context) (*Process, error)
}

// StartProcess runs one of the services (bin with args, env on top of a
// minimal environment) and waits until it logs "listening" with its address.
func StartProcess(ctx context.Context, name, bin string, env []string, out Output, args ...string) (*Process, error) {
	listening := make(chan string, 1)
	p, err := spawn(name, bin, args, env, out, func(line string) {
		if addr := listeningAddr(line); addr != "" {
			select {
			case listening <- addr:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	select {
	case p.Addr = <-listening:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", name, p.err, strings.Join(p.Lines(), "\n"))
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not log \"listening\" within 30s", name)
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		return nil, ctx.Err()
	}
}

// StartTool runs a program of the stack that is not ours (statsd_exporter,
// Prometheus) with args, listening at addr, and waits until
// http://addr+readyPath answers 200.
func StartTool(ctx context.Context, name, bin string, args []string, addr, readyPath string, out Output) (*Process, error) {
	p, err := spawn(name, bin, args, nil, out, nil)
	if err != nil {
		return nil, err
	}
	p.Addr = addr
	p.restart = func(ctx context.Context) (*Process, error) {
		return StartTool(ctx, name, bin, args, addr, readyPath, out)
	}
	ready := make(chan error, 1)
	go func() { ready <- WaitReady(ctx, p.URL()+readyPath, 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			_ = p.cmd.Process.Kill()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited at start: %v\n%s", name, p.err, strings.Join(p.Lines(), "\n"))
	}
}

// Output is where a process's output goes besides Lines.
type Output struct {
	// Log gets every line, prefixed with the process's name and "| ".
	Log io.Writer
	// ContainerLogs, when set, is a folder where each process appends its
	// stdout and stderr to NAME/NAME-json.log, as Docker's json-file log
	// driver writes a container's (see jsonfile.go): what a log forwarder
	// reads on a Docker host.
	ContainerLogs string
}

// spawn starts bin and keeps its output: stdout and stderr line by line
// (Lines), copied to out. onLine, when set, sees each line.
func spawn(name, bin string, args, env []string, out Output, onLine func(string)) (*Process, error) {
	p := &Process{Name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	var jf *jsonFile
	if out.ContainerLogs != "" {
		if jf, err = openJSONFile(out.ContainerLogs, name); err != nil {
			return nil, err
		}
	}
	if err := p.cmd.Start(); err != nil {
		jf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var wg sync.WaitGroup
	for stream, r := range map[string]io.Reader{"stdout": stdout, "stderr": stderr} {
		wg.Go(func() {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				p.mu.Lock()
				p.lines = append(p.lines, line)
				p.mu.Unlock()
				jf.Line(stream, line)
				fmt.Fprintf(out.Log, "%s| %s\n", name, line)
				if onLine != nil {
					onLine(line)
				}
			}
		})
	}
	go func() {
		wg.Wait() // both pipes read to the end, as Wait requires
		p.err = p.cmd.Wait()
		jf.Close()
		close(p.done)
	}()
	return p, nil
}

func listeningAddr(line string) string {
	var l struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "listening" {
		return ""
	}
	return l.Addr
}

// URL is the process's base URL.
func (p *Process) URL() string { return "http://" + p.Addr }

// Lines returns a copy of every stdout line so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns every stdout line so far as one text (for logtest.Parse).
func (p *Process) Output() string { return strings.Join(p.Lines(), "\n") }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit code
// (-1 when it did not exit, and it is then killed).
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1, fmt.Errorf("%s did not exit within %s", p.Name, timeout)
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// Stop sends SIGTERM and waits for the exit; it returns an error unless the
// process exits 0 within timeout.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
	default:
		_ = p.Signal(syscall.SIGTERM)
	}
	code, err := p.Wait(timeout)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited %d", p.Name, code)
	}
	return nil
}

type prefixed struct {
	w      io.Writer
	prefix string
}

func prefixWriter(w io.Writer, prefix string) io.Writer { return prefixed{w, prefix} }

func (p prefixed) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			fmt.Fprint(p.w, p.prefix+l)
		}
	}
	return len(b), nil
}

// DebugURL is the base URL of the process's debug listener (DEBUG_ADDR), from
// its "debug listening" line, or "".
func (p *Process) DebugURL() string {
	for _, line := range p.Lines() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "debug listening" {
			return "http://" + l.Addr
		}
	}
	return ""
}

// RSS is the process's resident memory in bytes (Linux /proc).
func (p *Process) RSS() (int64, error) { return ProcMemory(p.cmd.Process.Pid, "VmRSS") }

// ProcMemory reads a memory field of /proc/PID/status (VmRSS, VmHWM, ...)
// in bytes.
func ProcMemory(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// ExitErr is how the process ended (after Exited is closed).
func (p *Process) ExitErr() error { return p.err }

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// CPU is the processor time the process has used so far, user and system
// (Linux /proc).
func (p *Process) CPU() (time.Duration, error) { return procCPU(p.cmd.Process.Pid) }

// procCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat, in
// clock ticks of 1/100 s (USER_HZ, 100 on Linux for every architecture Go
// supports there).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return statCPU(string(b))
}

// statCPU reads the CPU time from the text of a /proc/PID/stat file.
func statCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat: %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // from field 3 on
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields", len(f))
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// WaitReady polls url until it answers 200 or timeout passes.
func WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %s", url, timeout, last)
}
