package stackfiles

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/failready/failready/devstack/imagetable"
)

func imageTable(t *testing.T) *imagetable.Table {
	t.Helper()
	table, err := imagetable.Load(repoRoot + "/deploy/images/images.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestImageTableCoversCompose: every image the compose file runs and does
// not build here has a row in deploy/images/images.yaml, and every row is an
// image the compose file runs (same name, same tag).
func TestImageTableCoversCompose(t *testing.T) {
	p, table := loadCompose(t), imageTable(t)
	inCompose := map[string]bool{}
	for name, s := range p.Services {
		if s.Build != nil {
			continue
		}
		inCompose[s.Image] = true
		if _, ok := table.Find(s.Image); !ok {
			t.Errorf("%s: image %s has no row in deploy/images/images.yaml (read its upstream Dockerfile at that tag and add one)", name, s.Image)
		}
	}
	for _, img := range table.Images {
		if !inCompose[img.Image] {
			t.Errorf("deploy/images/images.yaml: %s is not an image of docker-compose.yml (a stale tag?)", img.Image)
		}
	}
}

// TestComposeAgainstImageTable: what compose asks of each third-party image
// is there: every healthcheck command, entrypoint and command override
// runs a program the image has; every absolute path a command names is
// mounted or is one of the image's own; every mount target is one the
// program uses; an explicit user is numeric; a read-only root leaves the
// program's data paths writable; config mounted from the host is read-only.
func TestComposeAgainstImageTable(t *testing.T) {
	p, table := loadCompose(t), imageTable(t)
	checked := 0
	for name, s := range p.Services {
		img, ok := table.Find(s.Image)
		if !ok {
			continue
		}
		checked++
		for _, err := range checkAgainstImage(s, img) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d services checked against the table", checked)
	}
}

// TestImageTableCatchesWhatTheEngineWould: the check fails on what a real
// engine fails on: the Loki healthcheck this project had (wget, which
// Loki's distroless image has not had since 3.6.0), a shell healthcheck in
// a scratch image, a command naming a path nothing mounts, and a disabled
// healthcheck (docker compose up --wait fails on it).
func TestImageTableCatchesWhatTheEngineWould(t *testing.T) {
	p, table := loadCompose(t), imageTable(t)
	cases := []struct {
		service string
		change  func(*types.ServiceConfig)
		want    string
	}{
		{"loki", func(s *types.ServiceConfig) {
			s.HealthCheck = &types.HealthCheckConfig{Test: []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:3100/ready"}}
		}, "runs wget, which grafana/loki:3.7.8 does not have"},
		{"toxiproxy", func(s *types.ServiceConfig) {
			s.HealthCheck = &types.HealthCheckConfig{Test: []string{"CMD-SHELL", "/toxiproxy-cli list || exit 1"}}
		}, "needs a shell"},
		{"prometheus", func(s *types.ServiceConfig) {
			s.Command = append(slices.Clone(s.Command), "--web.config.file=/etc/web/web.yml")
		}, "/etc/web/web.yml"},
		{"otel-collector", func(s *types.ServiceConfig) {
			s.HealthCheck = &types.HealthCheckConfig{Test: []string{"CMD", "wget", "-qO-", "http://localhost:13133/"}}
		}, "runs wget"},
		{"otel-collector", func(s *types.ServiceConfig) { s.HealthCheck = &types.HealthCheckConfig{Disable: true} }, "up --wait"},
	}
	for _, c := range cases {
		s := p.Services[c.service]
		s.Command = slices.Clone(s.Command)
		c.change(&s)
		img, _ := table.Find(s.Image)
		errs := checkAgainstImage(s, img)
		if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), c.want) }) {
			t.Errorf("%s: want an error with %q, got %v", c.service, c.want, errs)
		}
	}
}

// checkAgainstImage lists what a service asks of its image that the image
// does not have.
func checkAgainstImage(s types.ServiceConfig, img imagetable.Image) []error {
	var errs []error
	has := func(what, prog string) {
		if !img.Has(prog) {
			errs = append(errs, fmt.Errorf("%s runs %s, which %s does not have (it has %v%s; %s)",
				what, prog, img.Image, append(slices.Clone(img.Tools), img.Files...), probeNote(img), img.Source))
		}
	}
	// The healthcheck.
	if hc := s.HealthCheck; hc != nil && (hc.Disable || len(hc.Test) > 0 && hc.Test[0] == "NONE") {
		// docker compose up --wait fails on a container whose healthcheck
		// is disabled ("has no healthcheck configured"); one with none is
		// waited for until it runs.
		errs = append(errs, fmt.Errorf("healthcheck disabled: make up (up --wait) fails on it; leave the healthcheck out instead"))
	} else if hc != nil && len(hc.Test) > 1 {
		switch hc.Test[0] {
		case "CMD":
			has("the healthcheck", hc.Test[1])
		case "CMD-SHELL":
			if !img.Shell {
				errs = append(errs, fmt.Errorf("the healthcheck %q needs a shell, which %s does not have (%s)", hc.Test[1], img.Image, img.Source))
			} else {
				has("the healthcheck", firstProgram(hc.Test[1]))
			}
		default:
			errs = append(errs, fmt.Errorf("healthcheck %v: want CMD or CMD-SHELL", hc.Test))
		}
	} else if !img.Shell && len(img.Tools) == 0 && len(img.Probe) == 0 {
		// No healthcheck is right only where nothing inside could run one,
	} else if len(s.Profiles) > 0 && s.Restart == "no" {
		// or for a job that runs and exits.
	} else {
		errs = append(errs, fmt.Errorf("no healthcheck, but %s can run one (tools %v, probe %v)", img.Image, img.Tools, img.Probe))
	}
	// The entrypoint, and the command it runs.
	if len(s.Entrypoint) > 0 {
		has("the entrypoint", s.Entrypoint[0])
	}
	if len(s.Entrypoint) == 0 && len(s.Command) > 0 && len(img.Entrypoint) > 0 &&
		strings.HasSuffix(img.Entrypoint[0], "docker-entrypoint.sh") && !strings.HasPrefix(s.Command[0], "-") {
		has("the command", s.Command[0]) // the entrypoint script runs a command that is not a flag
	}
	if len(img.Entrypoint) == 0 && len(s.Entrypoint) == 0 && len(s.Command) > 0 {
		has("the command", s.Command[0])
	}
	// The paths the command names.
	var mounts []string
	for _, v := range s.Volumes {
		mounts = append(mounts, v.Target)
	}
	for _, tmp := range s.Tmpfs {
		mounts = append(mounts, tmp)
	}
	own := append(append(slices.Clone(img.Config), img.Data...), img.Files...)
	words := append(slices.Clone([]string(s.Entrypoint)), s.Command...)
	for _, w := range words {
		for _, p := range absPaths(w) {
			if !under(p, mounts) && !under(p, own) && !strings.HasPrefix(p, "/dev/") && !img.Has(p) {
				errs = append(errs, fmt.Errorf("the command names %s, which is neither mounted (%v) nor one of %s's paths (%v)", p, mounts, img.Image, own))
			}
		}
	}
	// The mounts: each is one of the image's paths, or named by the
	// command, the environment, or a config file mounted beside it.
	var said strings.Builder
	said.WriteString(strings.Join(words, " "))
	for _, v := range s.Environment {
		if v != nil {
			said.WriteString(" " + *v)
		}
	}
	if s.HealthCheck != nil {
		said.WriteString(" " + strings.Join(s.HealthCheck.Test, " "))
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			if b, err := os.ReadFile(filepath.Join(repoRoot, v.Source)); err == nil {
				said.Write(b)
			} else if b, err := os.ReadFile(v.Source); err == nil {
				said.Write(b)
			}
		}
	}
	for _, v := range s.Volumes {
		if !under(v.Target, own) && !strings.Contains(said.String(), v.Target) {
			errs = append(errs, fmt.Errorf("mounts %s, which is not one of %s's paths (%v) and nothing the service runs names it", v.Target, img.Image, own))
		}
		if v.Type == types.VolumeTypeBind && !v.ReadOnly {
			errs = append(errs, fmt.Errorf("bind-mounts %s from the host read-write; config from the host is mounted :ro", v.Source))
		}
	}
	// The user.
	if s.User != "" {
		u, _, _ := strings.Cut(s.User, ":")
		if _, err := strconv.Atoi(u); err != nil {
			errs = append(errs, fmt.Errorf("user %q: give a numeric user (the image's own is %s)", s.User, img.User))
		}
	}
	// A read-only root leaves the data paths writable.
	if s.ReadOnly {
		for _, d := range img.Data {
			if !under(d, mounts) {
				errs = append(errs, fmt.Errorf("read_only, but %s writes to %s and nothing is mounted there", img.Image, d))
			}
		}
	}
	return errs
}

func probeNote(img imagetable.Image) string {
	if len(img.Probe) == 0 {
		return ""
	}
	return ", its own probe " + strings.Join(img.Probe, " ")
}

// firstProgram is the program a shell command line starts with.
func firstProgram(cmd string) string {
	for _, w := range strings.Fields(cmd) {
		if strings.Contains(w, "=") && !strings.HasPrefix(w, "-") {
			continue // VAR=value
		}
		return w
	}
	return ""
}

// absPaths are the absolute paths in a command word: /x, or --flag=/x.
func absPaths(w string) []string {
	if _, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(w, "-") {
		w = v
	}
	if strings.HasPrefix(w, "/") {
		return []string{path.Clean(w)}
	}
	return nil
}

// under reports whether p is one of dirs or inside one.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// TestChaosKillReachesTheProgram: make chaos-kill and chaos-kill-worker
// crash a program the way its restart policy answers. docker kill would
// not do: the engine counts it as a manual stop and cancels the restart
// policy (seen on a real engine: restart count 0, the service gone). So
// scripts/stack.sh signals the program from inside its PID namespace with
// the diskfill job's busybox (kill, pidof), and the program must not be the
// namespace's PID 1 (the kernel drops SIGKILL sent to it from inside):
// init: true.
func TestChaosKillReachesTheProgram(t *testing.T) {
	p, table := loadCompose(t), imageTable(t)
	stack := readFile(t, "scripts/stack.sh")
	if strings.Contains(stack, "docker compose kill") || !strings.Contains(stack, `--pid "container:$id"`) || !strings.Contains(stack, "--profile chaos config diskfill") {
		t.Error("scripts/stack.sh kill must signal from inside the container's PID namespace with the diskfill image, not docker compose kill")
	}
	img, ok := table.Find(p.Services["diskfill"].Image)
	if !ok || !img.Has("kill") || !img.Has("pidof") || !img.Has("sh") {
		t.Errorf("%s lacks sh, kill or pidof, which scripts/stack.sh kill runs", p.Services["diskfill"].Image)
	}
	killed := regexp.MustCompile(`scripts/stack.sh kill (\w+)`).FindAllStringSubmatch(readFile(t, "Makefile"), -1)
	if len(killed) < 2 {
		t.Fatalf("the Makefile kills %v", killed)
	}
	for _, m := range killed {
		s := p.Services[m[1]]
		if s.Init == nil || !*s.Init {
			t.Errorf("%s: init is not true, so its program is PID 1 and ignores a SIGKILL from inside", m[1])
		}
		if s.Restart != "always" {
			t.Errorf("%s: restart %q, want always (a killed program comes back)", m[1], s.Restart)
		}
	}
}
