//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// TestComposeConfigWithTheRealCLI: the docker compose CLI itself (built
// from its module at the pinned version: make tools) accepts the compose
// file with each profile, with no warning, and selects the services the
// compose-go loader of the stackfiles tests selects. No Docker engine is
// needed for `config`.
func TestComposeConfigWithTheRealCLI(t *testing.T) {
	bin := toolBin(t, "COMPOSE_BIN")
	compose := func(file string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"-f", file, "-p", "failready"}, args...)...)
		cmd.Dir = repoRoot
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	file, err := filepath.Abs(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, profile := range []string{"", "chaos", "load", "*"} {
		var prof []string
		if profile != "" {
			prof = []string{"--profile", profile}
		}
		if _, stderr, err := compose(file, append(prof, "config", "-q")...); err != nil || stderr != "" {
			t.Errorf("profile %q: docker compose config -q: %v\n%s", profile, err, stderr)
		}
		out, stderr, err := compose(file, append(prof, "config", "--services")...)
		if err != nil {
			t.Fatalf("profile %q: config --services: %v\n%s", profile, err, stderr)
		}
		got := strings.Fields(out)
		slices.Sort(got)
		opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(repoRoot), cli.WithName("failready"),
			cli.WithProfiles(strings.Fields(profile)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := p.ServiceNames()
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("profile %q: the CLI selects %v, compose-go %v", profile, got, want)
		}
	}

	// The CLI does check: an unknown key is refused.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "docker-compose.yml")
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("services:\n"), []byte("services:\n  oops:\n    imgae: x\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := compose(bad, "config", "-q"); err == nil || !strings.Contains(stderr, "imgae") {
		t.Errorf("a misspelt key: %v %s", err, stderr)
	}
}
