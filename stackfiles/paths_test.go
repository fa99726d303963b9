package stackfiles

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/failready/failready/devstack/devstacktest"
)

// TestRepositoryPathsExist: every path of this repository that a file
// names (a comment, a doc, a config) exists: the repository's own
// references stand alone and lead somewhere. Tests' fixtures and the
// examples of what a user writes are left out by name.
func TestRepositoryPathsExist(t *testing.T) {
	ref := regexp.MustCompile(`(?:^|[^/.\w-])((?:deploy|docs|internal|app|devstack|cmd|scripts|e2e|stackfiles|service1|service2|worker|bench)/[A-Za-z0-9_./-]+\.(?:md|go|yaml|yml|sql|sh|json|mk))\b`)
	examples := map[string]bool{
		"bench/baseline.json": true, // what go run ./cmd/benchratio -write writes, in its usage
		"deploy/chaos/x.yaml": true, // a refused experiment, in docs/chaos.md's example output
	}
	n := 0
	for _, f := range gitFiles(t) {
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

// TestRepositoryJoinsExist: every filepath.Join(repoRoot, "a", "b", ...)
// in the repository's Go files, tests included, names a path that exists,
// up to its first argument that is not a plain name (a variable, a glob).
// A folder moved without its readers fails here, not in a late e2e run.
func TestRepositoryJoinsExist(t *testing.T) {
	n := 0
	for _, f := range gitFiles(t, "*.go") {
		file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, f), nil, parser.SkipObjectResolution)
		if err != nil {
			continue // a file the checkout has deleted
		}
		ast.Inspect(file, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Join" {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "filepath" {
				return true
			}
			if root, ok := call.Args[0].(*ast.Ident); !ok || root.Name != "repoRoot" {
				return true
			}
			var parts []string
			for _, a := range call.Args[1:] {
				lit, ok := a.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					break
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil || strings.ContainsAny(s, "*?[") {
					break
				}
				parts = append(parts, s)
			}
			if len(parts) == 0 {
				return true
			}
			n++
			p := filepath.Join(parts...)
			if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
				t.Errorf("%s joins repoRoot with %s, which is not in the repository", f, p)
			}
			return true
		})
	}
	if n < 20 {
		t.Fatalf("only %d joins of repoRoot found", n)
	}
}

// gitFiles lists the repository's tracked files (matching patterns, if
// any). Outside a git checkout the tests that read them are skipped on a
// laptop and fail in CI, which always runs on a clone.
func gitFiles(t *testing.T, patterns ...string) []string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", repoRoot, "ls-files", "--"}, patterns...)...).Output()
	if err != nil {
		devstacktest.Missing(t, "not a git checkout: "+err.Error())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
