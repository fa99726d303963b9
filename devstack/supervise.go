// Supervision, as compose's `restart: always` does it: a program of the
// stack that exits while the stack runs is reported at once and started
// again, the same way, after a backoff.

package devstack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Backoff between restarts of one program: it doubles from MinBackoff to
// MaxBackoff while the program keeps dying, and is back at MinBackoff once
// it has run for StableAfter.
const (
	MinBackoff  = time.Second
	MaxBackoff  = 30 * time.Second
	StableAfter = 30 * time.Second
)

// Event is one line of the supervisor's report.
type Event struct {
	Name string // the program: service1, mariadb, ...
	Pid  int    // the new process's, on a restart; 0 otherwise
	Msg  string
}

// slot is one supervised program: how to wait for it to exit and how to
// start it again.
type slot struct {
	name    string
	exited  func() <-chan struct{}
	status  func() string // how it ended
	restart func(context.Context) (pid int, err error)
}

// Programs returns the running programs' process IDs by name (mariadb,
// toxiproxy excluded: it runs in this process).
func (s *Stack) Programs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := map[string]int{}
	if s.MariaDB != nil {
		pids["mariadb"] = s.MariaDB.Pid()
	}
	for _, p := range s.processes() {
		pids[p.Name] = p.Pid()
	}
	return pids
}

// processes lists the running Processes (s.mu held).
func (s *Stack) processes() []*Process {
	var ps []*Process
	for _, p := range append([]*Process{s.Service1, s.Service2, s.NATS, s.StatsdExporter, s.Prometheus, s.Alertmanager, s.AlertLog, s.Collector, s.Jaeger}, s.Workers...) {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Supervise watches every program of the stack until ctx ends, and restarts
// any that exits, after the backoff, reporting the exit and the restart to
// report (from several goroutines, one call at a time). It returns once
// every watcher has stopped; call Stop only after it has returned.
func (s *Stack) Supervise(ctx context.Context, report func(Event)) {
	var mu sync.Mutex
	say := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		report(e)
	}
	var wg sync.WaitGroup
	for _, sl := range s.slots() {
		wg.Go(func() { supervise(ctx, sl, say) })
	}
	wg.Wait()
}

func supervise(ctx context.Context, sl slot, say func(Event)) {
	backoff := MinBackoff
	started := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sl.exited():
		}
		if time.Since(started) >= StableAfter {
			backoff = MinBackoff
		}
		say(Event{Name: sl.name, Msg: fmt.Sprintf("exited (%s); restarting in %s", sl.status(), backoff)})
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, MaxBackoff)
			pid, err := sl.restart(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				started = time.Now()
				say(Event{Name: sl.name, Pid: pid, Msg: fmt.Sprintf("restarted (pid %d)", pid)})
				break
			}
			say(Event{Name: sl.name, Msg: fmt.Sprintf("restart failed: %v; next try in %s", err, backoff)})
		}
	}
}

// slots are the stack's programs as the supervisor sees them.
func (s *Stack) slots() []slot {
	var sl []slot
	if m := s.MariaDB; m != nil {
		sl = append(sl, slot{
			name:   "mariadb",
			exited: func() <-chan struct{} { s.mu.Lock(); defer s.mu.Unlock(); return m.Exited() },
			status: func() string { return exitStatus(m.waitErr) },
			restart: func(ctx context.Context) (int, error) {
				s.mu.Lock()
				defer s.mu.Unlock()
				err := m.Start(ctx)
				return m.Pid(), err
			},
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.processes() {
		ptr := s.processSlot(p)
		sl = append(sl, slot{
			name:   p.Name,
			exited: func() <-chan struct{} { s.mu.Lock(); defer s.mu.Unlock(); return (*ptr).Exited() },
			status: func() string { s.mu.Lock(); defer s.mu.Unlock(); return exitStatus((*ptr).ExitErr()) },
			restart: func(ctx context.Context) (int, error) {
				np, err := s.restartProcess(ctx, p.Name, ptr)
				if err != nil {
					return 0, err
				}
				return np.Pid(), nil
			},
		})
	}
	return sl
}

// processSlot is where the stack keeps p (s.mu held).
func (s *Stack) processSlot(p *Process) **Process {
	ptrs := []**Process{&s.Service1, &s.Service2, &s.NATS, &s.StatsdExporter, &s.Prometheus, &s.Alertmanager, &s.AlertLog, &s.Collector, &s.Jaeger}
	for i := range s.Workers {
		ptrs = append(ptrs, &s.Workers[i])
	}
	for _, ptr := range ptrs {
		if *ptr == p {
			return ptr
		}
	}
	panic("devstack: not a process of this stack: " + p.Name)
}

// restartProcess starts the program kept at ptr again: a service as
// StartService does (readiness and toxiproxy routes included), another
// program with the command it was started with.
func (s *Stack) restartProcess(ctx context.Context, name string, ptr **Process) (*Process, error) {
	if name == "service1" || name == "service2" || strings.HasPrefix(name, "worker") {
		var err error
		if strings.HasPrefix(name, "worker") {
			s.mu.Lock()
			i := slices.Index(s.Workers, *ptr)
			s.mu.Unlock()
			err = s.StartWorker(ctx, i)
		} else {
			err = s.StartService(ctx, name)
		}
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return *ptr, nil
	}
	s.mu.Lock()
	restart := (*ptr).restart
	s.mu.Unlock()
	np, err := restart(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	*ptr = np
	s.mu.Unlock()
	return np, nil
}

// exitStatus says how a program ended, from its Wait error.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// RestartProgram starts the named program again (after a chaos experiment stopped
// it for a while), as the supervisor would: a service or worker as it was
// started, another program with its command.
func (s *Stack) RestartProgram(ctx context.Context, name string) error {
	s.mu.Lock()
	var ptr **Process
	for _, p := range s.processes() {
		if p.Name == name {
			ptr = s.processSlot(p)
		}
	}
	s.mu.Unlock()
	if ptr == nil {
		return fmt.Errorf("no program %q", name)
	}
	_, err := s.restartProcess(ctx, name, ptr)
	return err
}
