package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// actor does the actions of methods and rollbacks against the stack.
type actor struct {
	root      string // the repository: make runs there
	toxiproxy string // toxiproxy's API
	client    *http.Client
	scale     float64
}

// ActionResult is one action as the journal keeps it.
type ActionResult struct {
	Name   string    `json:"name"`
	Did    string    `json:"did"` // what was done: "make chaos-kill", "POST /proxies/service2 {...}"
	Start  time.Time `json:"start"`
	TookMS int64     `json:"took_ms"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
	Output string    `json:"output,omitempty"`
}

func (a *actor) do(ctx context.Context, act Action) ActionResult {
	r := ActionResult{Name: act.Name, Start: time.Now().UTC(), Did: act.describe(a.scale)}
	var err error
	switch {
	case act.Make != "":
		r.Output, err = a.make(ctx, act.Make)
	case act.Toxiproxy != nil:
		err = a.toxi(ctx, act.Toxiproxy)
	case act.Wait > 0:
		err = sleep(ctx, scaled(act.Wait.D(), a.scale))
	case act.Load != nil:
		r.Output, err = a.burst(ctx, act.Load)
	}
	r.TookMS = time.Since(r.Start).Milliseconds()
	r.OK = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// describe says what the action does, as a command a reader could type.
func (act Action) describe(scale float64) string {
	switch {
	case act.Make != "":
		return "make " + act.Make
	case act.Toxiproxy != nil && act.Toxiproxy.Reset:
		return "POST /reset (toxiproxy)"
	case act.Toxiproxy != nil && act.Toxiproxy.Toxic != nil:
		b, _ := json.Marshal(act.Toxiproxy.Toxic.full())
		return fmt.Sprintf("POST /proxies/%s/toxics %s (toxiproxy)", act.Toxiproxy.Proxy, b)
	case act.Toxiproxy != nil:
		return fmt.Sprintf(`POST /proxies/%s {"enabled":%t} (toxiproxy)`, act.Toxiproxy.Proxy, *act.Toxiproxy.Enabled)
	case act.Load != nil:
		return fmt.Sprintf("make load LOAD_RATE=%d LOAD_DURATION=%s", act.Load.Rate, loadDuration(act.Load, scale))
	default:
		return "wait " + scaled(act.Wait.D(), scale).String()
	}
}

// byHand is how to undo what the method did when a rollback failed: every
// chaos target and toxiproxy change is undone by make chaos-reset.
func byHand(toxiproxy string) []string {
	return []string{
		"make chaos-reset",
		"or, without make: curl -X POST " + toxiproxy + "/reset; scripts/stack.sh free-spool",
		"a killed program comes back by itself (compose's restart policy, make local's runner): scripts/stack.sh which, make logs",
	}
}

func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) * scale).Round(time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func loadDuration(l *LoadAction, scale float64) string {
	return max(scaled(l.Duration.D(), scale), time.Second).Round(time.Second).String()
}

// burst runs make load for the action's (scaled) duration. loadgen exits
// 1 when answers were not the healthy ones: under a fault that is
// expected, so only its not running is an error.
func (a *actor) burst(ctx context.Context, l *LoadAction) (string, error) {
	out, err := a.run(ctx, "load", fmt.Sprintf("LOAD_RATE=%d", l.Rate), "LOAD_DURATION="+loadDuration(l, a.scale))
	if err != nil && !strings.Contains(out, "statuses") {
		return out, err
	}
	return out, nil
}

// make runs a chaos target, in its own process group so that a cancelled
// run stops it whole; its output is returned.
func (a *actor) make(ctx context.Context, target string) (string, error) {
	return a.run(ctx, target)
}

// run runs make with args in the repository.
func (a *actor) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory", "-C", a.root}, args...)...)
	cmd.Env = makeEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err != nil {
		return text, fmt.Errorf("make %s: %v: %s", strings.Join(args, " "), err, lastLines(text, 5))
	}
	return text, nil
}

// makeEnv is this process's environment without a parent make's flags:
// the runner's make is one of its own.
func makeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") {
			env = append(env, kv)
		}
	}
	return env
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// full is the toxic as toxiproxy's API takes it: toxicity 1 (always) when
// the file leaves it out.
func (t *Toxic) full() Toxic {
	out := *t
	if out.Toxicity == 0 {
		out.Toxicity = 1
	}
	return out
}

// toxi changes toxiproxy through its API.
func (a *actor) toxi(ctx context.Context, t *ToxiproxyAction) error {
	path, body := "/reset", []byte(nil)
	switch {
	case t.Reset:
	case t.Toxic != nil:
		path = "/proxies/" + t.Proxy + "/toxics"
		body, _ = json.Marshal(t.Toxic.full())
	default:
		path = "/proxies/" + t.Proxy
		body, _ = json.Marshal(map[string]bool{"enabled": *t.Enabled})
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.toxiproxy+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("toxiproxy: POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
