package stackfiles

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRepositoryPathsExist: every path of this repository that a file
// names (a comment, a doc, a config) exists: the repository's own
// references stand alone and lead somewhere. Tests' fixtures and the
// examples of what a user writes are left out by name.
func TestRepositoryPathsExist(t *testing.T) {
	out, err := exec.Command("git", "-C", repoRoot, "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	ref := regexp.MustCompile(`(?:^|[^/.\w-])((?:deploy|docs|internal|app|devstack|cmd|scripts|e2e|stackfiles|service1|service2|worker|bench)/[A-Za-z0-9_./-]+\.(?:md|go|yaml|yml|sql|sh|json|mk))\b`)
	examples := map[string]bool{
		"bench/baseline.json": true, // what go run ./cmd/benchratio -write writes, in its usage
		"deploy/chaos/x.yaml": true, // a refused experiment, in docs/chaos.md's example output
	}
	n := 0
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			continue // a file the checkout has deleted
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, err := os.Stat(filepath.Join(repoRoot, m[1])); err != nil && !examples[m[1]] {
				t.Errorf("%s names %s, which is not in the repository", f, m[1])
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d paths named in the repository's files", n)
	}
}
