package stackfiles

import (
	"context"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"

	"github.com/failready/failready/devstack"
)

const repoRoot = ".."

// loadCompose loads docker-compose.yml as `docker compose` would, with the
// compose-spec loader (schema validation, interpolation, anchors, merges).
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	return loadComposeFiles(t, []string{"docker-compose.yml"}, env...)
}

// loadComposeFiles loads compose files (relative to the repository) in
// order, each merged over the ones before, as docker compose -f ... -f does.
func loadComposeFiles(t *testing.T, files []string, env ...string) *types.Project {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, repoRoot+"/"+f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(repoRoot),
		cli.WithEnv(env),
		cli.WithName("failready"),
		cli.WithProfiles([]string{"*"}), // every service, the profiled ones too
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%v do not load: %v", files, err)
	}
	return p
}

var versionTag = regexp.MustCompile(`^v?\d+\.\d+(\.\d+)*(-[a-z0-9.]+)?$`)

func TestComposeImagesArePinned(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		if s.Build != nil {
			// Built here, from the Dockerfile stage named after it; the
			// image is named after the commit it was built from.
			stages := dockerfileStages(t)
			if s.Build.Target != name || stages[name] == "" {
				t.Errorf("%s: build target %q; want the Dockerfile stage %q (stages %v)", name, s.Build.Target, name, stages)
			}
			if s.Build.Args["VERSION"] == nil {
				t.Errorf("%s: build arg VERSION (the git commit) missing", name)
			}
			if !strings.HasSuffix(s.Image, ":${GIT_COMMIT:-dev}") && !strings.Contains(s.Image, ":") {
				t.Errorf("%s: image %q has no tag", name, s.Image)
			}
			continue
		}
		ref := s.Image
		i := strings.LastIndex(ref, ":")
		if i < 0 || strings.Contains(ref[i:], "/") {
			t.Errorf("%s: image %q has no tag", name, ref)
			continue
		}
		if tag := ref[i+1:]; tag == "latest" || !versionTag.MatchString(tag) {
			t.Errorf("%s: image %q is not pinned to a version", name, ref)
		}
	}
	// GIT_COMMIT stamps the built images (make up sets it).
	p = loadCompose(t, "GIT_COMMIT=abc1234")
	if img := p.Services["service1"].Image; img != "failready-service1:abc1234" {
		t.Errorf("service1 image %q does not carry GIT_COMMIT", img)
	}
}

func TestComposeEveryServiceIsHealthcheckedAndLimited(t *testing.T) {
	p := loadCompose(t)
	if len(p.Services) < 7 {
		t.Fatalf("services: %v", p.ServiceNames())
	}
	for name, s := range p.Services {
		oneShot := len(s.Profiles) > 0 && s.Restart == "no" // a job (loadgen): it runs and exits
		// An image with nothing inside that could probe it goes without
		// (the collector's: TestComposeAgainstImageTable holds which).
		img, _ := imageTable(t).Find(s.Image)
		unprobeable := s.Build == nil && !img.Shell && len(img.Tools) == 0 && len(img.Probe) == 0 && img.Image != ""
		if !oneShot && !unprobeable && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2) {
			t.Errorf("%s: no healthcheck", name)
		}
		mem := int64(s.MemLimit)
		if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
			mem = int64(s.Deploy.Resources.Limits.MemoryBytes)
		}
		if mem <= 0 {
			t.Errorf("%s: no memory limit", name)
		}
		if !oneShot && (s.Restart == "" || s.Restart == "no") {
			t.Errorf("%s: no restart policy", name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
	}
}

func TestComposeDependsOnHealthyServices(t *testing.T) {
	p := loadCompose(t)
	want := map[string]string{"service1": "service2", "service2": "mysql"}
	for svc, dep := range want {
		d, ok := p.Services[svc].DependsOn[dep]
		if !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s must depend on %s with condition service_healthy, got %+v", svc, dep, p.Services[svc].DependsOn)
		}
	}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			ds, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && ds.HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}
}

// ports returns the container ports a service listens on, as declared.
func ports(s types.ServiceConfig) []string {
	var out []string
	for _, e := range s.Expose {
		out = append(out, strings.TrimSuffix(strings.TrimSuffix(e, "/udp"), "/tcp"))
	}
	for _, p := range s.Ports {
		out = append(out, strconv.Itoa(int(p.Target)))
	}
	return out
}

// TestComposeEndpointsExist: every address in an environment variable names
// a service of the stack and a port that service listens on, and every
// LISTEN_ADDR is a port its service exposes.
func TestComposeEndpointsExist(t *testing.T) {
	p := loadCompose(t)
	checked := 0
	for name, s := range p.Services {
		for key, val := range s.Environment {
			if val == nil || !(strings.HasSuffix(key, "_ADDR") || strings.HasSuffix(key, "_URL") || strings.HasSuffix(key, "_ENDPOINT")) {
				continue
			}
			host, port := splitEndpoint(*val)
			if port == "" {
				t.Errorf("%s: %s=%q has no port", name, key, *val)
				continue
			}
			checked++
			if key == "LISTEN_ADDR" {
				if host != "" || !slices.Contains(ports(s), port) {
					t.Errorf("%s: LISTEN_ADDR=%q must listen on all interfaces on an exposed port (%v)", name, *val, ports(s))
				}
				continue
			}
			target, ok := p.Services[host]
			if !ok {
				t.Errorf("%s: %s=%q names no service of the stack", name, key, *val)
				continue
			}
			if !slices.Contains(ports(target), port) {
				t.Errorf("%s: %s=%q but %s listens on %v", name, key, *val, host, ports(target))
			}
			if _, ok := s.DependsOn[host]; !ok {
				t.Errorf("%s calls %s (%s) without depends_on", name, host, key)
			}
		}
	}
	if checked < 4 {
		t.Fatalf("only %d endpoints checked", checked)
	}
}

func splitEndpoint(v string) (host, port string) {
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Hostname(), u.Port()
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", ""
	}
	return host, port
}

// TestComposeStopGraceExceedsShutdownTimeout: compose must not SIGKILL a
// service that is still draining.
func TestComposeStopGraceExceedsShutdownTimeout(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"service1", "service2"} {
		s := p.Services[name]
		shutdown := 10 * time.Second // the services' default SHUTDOWN_TIMEOUT
		if v := s.Environment["SHUTDOWN_TIMEOUT"]; v != nil {
			shutdown, _ = time.ParseDuration(*v)
		}
		var drain time.Duration // default SHUTDOWN_DRAIN
		if v := s.Environment["SHUTDOWN_DRAIN"]; v != nil {
			drain, _ = time.ParseDuration(*v)
		}
		if drain == 0 {
			t.Errorf("%s: no SHUTDOWN_DRAIN in compose: traffic has no time to move away", name)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= drain+shutdown {
			t.Errorf("%s: stop_grace_period %v must exceed SHUTDOWN_DRAIN + SHUTDOWN_TIMEOUT %s", name, s.StopGracePeriod, drain+shutdown)
		}
	}
}

// TestComposeMySQLInit: the init files compose mounts are the ones the tests
// apply, and the app-user script is sourced (not executable), as the image
// needs it to use docker_process_sql.
func TestComposeMySQLInit(t *testing.T) {
	p := loadCompose(t)
	m := p.Services["mysql"]
	var mounted bool
	for _, v := range m.Volumes {
		if v.Target == "/docker-entrypoint-initdb.d" && strings.HasSuffix(v.Source, "deploy/mysql/init") && v.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Fatalf("deploy/mysql/init is not mounted read-only at /docker-entrypoint-initdb.d: %+v", m.Volumes)
	}
	fi, err := os.Stat(repoRoot + "/deploy/mysql/init/02-app-user.sh")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 != 0 {
		t.Error("02-app-user.sh must not be executable: the mysql image would run it without docker_process_sql")
	}
	for _, k := range []string{"MYSQL_APP_USER", "MYSQL_APP_PASSWORD", "MYSQL_DATABASE", "MYSQL_ROOT_PASSWORD"} {
		if m.Environment[k] == nil {
			t.Errorf("mysql lacks %s", k)
		}
	}
	// service2 connects as the app user, never as root.
	s2 := p.Services["service2"].Environment
	if *s2["MYSQL_USER"] != *m.Environment["MYSQL_APP_USER"] || *s2["MYSQL_PASSWORD"] != *m.Environment["MYSQL_APP_PASSWORD"] ||
		*s2["MYSQL_DATABASE"] != *m.Environment["MYSQL_DATABASE"] {
		t.Error("service2's MySQL credentials are not the app user's")
	}
}

// TestComposeMemoryBudget: the memory limits of every service, the profiled
// ones too, add up to at most 2 688 MiB less what is kept for the tiers later
// issues add, so that the whole workshop stack fits a laptop's Docker VM.
func TestComposeMemoryBudget(t *testing.T) {
	// 2.5 GiB until exemplars: Jaeger then took 128 MiB more, to keep 15
	// minutes of make load's traces (the panels' window), so that an
	// exemplar never opens a trace it has dropped.
	const budget, reserved = 2688 << 20, 0
	p := loadCompose(t)
	var sum int64
	for _, s := range p.Services {
		mem := int64(s.MemLimit)
		if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
			mem = int64(s.Deploy.Resources.Limits.MemoryBytes)
		}
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			mem *= int64(*s.Deploy.Replicas) // the worker runs two
		}
		sum += mem
	}
	t.Logf("memory limits: %d MiB of %d MiB (%d MiB kept for later tiers)", sum>>20, budget>>20, reserved>>20)
	if sum > budget-reserved {
		t.Errorf("memory limits add up to %d MiB, over the %d MiB budget less %d MiB reserved", sum>>20, budget>>20, reserved>>20)
	}
}

// TestComposeLogsAreRotated: every service logs through Docker's json-file
// driver with rotation, naming its service in each entry, and all of them
// together keep at most 512 MiB of logs on the disk.
func TestComposeLogsAreRotated(t *testing.T) {
	p := loadCompose(t)
	var total int64
	for name, svc := range p.Services {
		l := svc.Logging
		if l == nil || l.Driver != "json-file" {
			t.Errorf("%s: logging %+v, want the json-file driver", name, l)
			continue
		}
		// Every entry names its compose service (attrs), which the
		// collector makes the record's service.name.
		if l.Options["labels"] != devstack.ServiceAttr {
			t.Errorf("%s: logging option labels %q, want %s (a crash stack must be found under its service)", name, l.Options["labels"], devstack.ServiceAttr)
		}
		size, err := units.RAMInBytes(l.Options["max-size"])
		files, ferr := strconv.Atoi(l.Options["max-file"])
		if err != nil || ferr != nil || size <= 0 || files <= 0 {
			t.Errorf("%s: max-size %q, max-file %q: both must be set", name, l.Options["max-size"], l.Options["max-file"])
			continue
		}
		total += size * int64(files)
	}
	if total > 512<<20 {
		t.Errorf("the services keep up to %d MiB of logs, want at most 512", total>>20)
	}
	t.Logf("%d services, up to %d MiB of logs in all", len(p.Services), total>>20)
}

// TestRateLimitsPassOn: make up passes service1's rate limits on from the
// shell (make release-gate-capacity needs them raised, docs/slo.md), and
// unset they are service1's own defaults.
func TestRateLimitsPassOn(t *testing.T) {
	cfg := readFile(t, "service1/config.go")
	for _, k := range []string{"RATE_LIMIT_PER_CLIENT", "RATE_LIMIT_GLOBAL"} {
		m := regexp.MustCompile(`env\.Int\("` + k + `", (\d+),`).FindStringSubmatch(cfg)
		if m == nil {
			t.Fatalf("service1/config.go reads no %s", k)
		}
		value := func(env ...string) string {
			if v := loadCompose(t, env...).Services["service1"].Environment[k]; v != nil {
				return *v
			}
			return "(unset)"
		}
		if got := value(); got != m[1] {
			t.Errorf("%s unset: compose gives service1 %s, want service1's default %s", k, got, m[1])
		}
		if got := value(k + "=100000"); got != "100000" {
			t.Errorf("%s=100000 in the shell: compose gives service1 %s", k, got)
		}
	}
}
