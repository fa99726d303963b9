//go:build compose

package compose

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillLandsEveryTime: make chaos-kill and chaos-kill-worker (scripts/
// stack.sh kill) signal the program from a busybox inside its container's
// PID namespace. The signal ends the program, tini (the namespace's init)
// exits, and the kernel kills what is left in the namespace: a sender that
// had not exited yet too, and docker run then said 137. That race failed a
// compose smoke's worker-kill once (its method, the kill, failed after the
// signal had landed), and 1 send of 150 on a loaded machine. Now the sender
// stays until the namespace goes, and the container says whether the
// signal landed. Here ten containers of a project of the test's own, each
// a program named app under tini with restart always, are killed three
// times over: every kill must say it sent, and every container must come
// back with a new init.
func TestKillLandsEveryTime(t *testing.T) {
	const proj = "failready-killtest"
	ownProject(t, proj)
	// app is a shell script: its comm is "app", as the services' binary's
	// is (pidof finds it by that name).
	const app = `printf '#!/bin/sh\nwhile :; do sleep 1; done\n' >/tmp/app && chmod +x /tmp/app && exec /tmp/app`
	const n = 10
	// A service1 too: scripts/stack.sh tells compose's stack by it.
	for i := 0; i <= n; i++ {
		service := "worker"
		if i == n {
			service = "service1"
		}
		args := []string{"run", "-d", "--init", "--restart", "always", "--network", "none",
			"--label", "com.docker.compose.project=" + proj, "--label", "com.docker.compose.service=" + service,
			"--label", "com.docker.compose.oneoff=False", "--label", "com.docker.compose.container-number=" + strconv.Itoa(i+1),
			// docker compose ps lists no container without these (seen).
			"--label", "com.docker.compose.version=test", "--label", "com.docker.compose.config-hash=test",
			"busybox:1.37.0", "sh", "-c", app}
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}
	inits := func() map[string]string {
		out, err := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+proj, "--filter", "label=com.docker.compose.service=worker").Output()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, id := range strings.Fields(string(out)) {
			pid, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}} {{.State.Running}}", id).Output()
			if err != nil {
				t.Fatal(err)
			}
			if f := strings.Fields(string(pid)); len(f) == 2 && f[1] == "true" && f[0] != "0" {
				m[id] = f[0]
			}
		}
		return m
	}
	allRunning := func() map[string]string {
		deadline := time.Now().Add(60 * time.Second)
		for {
			m := inits()
			if len(m) == n {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d containers running after 60 s", len(m), n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	before := allRunning()
	for round := 1; round <= 3; round++ {
		cmd := exec.Command("scripts/stack.sh", "kill", "worker")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME="+proj)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "sent SIGKILL to worker (10 container(s))") {
			t.Fatalf("round %d: scripts/stack.sh kill worker: %v\n%s", round, err, out)
		}
		after := allRunning()
		for id, pid := range before {
			if after[id] == pid {
				t.Errorf("round %d: %s still has init %s: the signal did not land", round, id[:12], pid)
			}
		}
		before = after
	}
}
