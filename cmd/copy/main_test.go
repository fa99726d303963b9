package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const repoRoot = "../.."

// readmePatterns returns the patterns the README's table names, in order.
func readmePatterns(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| [^|]+ \\| \\[`internal/([a-z0-9]+)").FindAllStringSubmatch(string(readme), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d patterns in the README's table", len(out))
	}
	return out
}

// newModule makes an empty module in a temporary folder that requires
// what this repository requires, at the same versions and with the same
// go.sum: its dependencies then resolve from the module cache alone, with
// no network (the go get lines a copy prints fetch the rest on a machine
// with one).
func newModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gomod := readRepoFile(t, "go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)[1]
	var reqs strings.Builder
	for _, m := range regexp.MustCompile(`(?ms)^require \((.*?)^\)`).FindAllStringSubmatch(gomod, -1) {
		reqs.WriteString("require (" + m[1] + ")\n")
	}
	write(t, filepath.Join(dir, "go.mod"), "module example.com/lifted\n\ngo "+goVersion+"\n\n"+reqs.String())
	write(t, filepath.Join(dir, "go.sum"), readRepoFile(t, "go.sum"))
	return dir
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// goIn runs the go command in a module with no network: modules come from
// the module cache or not at all.
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestLiftProof: every pattern of the README's table, copied alone with
// this command (with only what its doc names) into a folder of its own in a
// fresh module whose dependencies come from the module cache, builds there
// with every build tag of its tests and passes its own tests there. One go
// test run builds them all: each copy is a separate set of packages, which
// imports nothing outside its own folder.
func TestLiftProof(t *testing.T) {
	if testing.Short() {
		t.Skip("the lift proof builds every pattern again in a module of its own")
	}
	dir := newModule(t)
	var get, pkgs []string
	for _, p := range readmePatterns(t) {
		var out bytes.Buffer
		if err := run([]string{"-from", repoRoot, "-to", filepath.Join(dir, p, "internal"), p}, &out); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		t.Log(strings.TrimSpace(out.String()))
		for _, line := range strings.Split(out.String(), "\n") {
			if g, ok := strings.CutPrefix(strings.TrimSpace(line), "go get "); ok && !slices.Contains(get, g) {
				get = append(get, g)
			}
		}
		pkgs = append(pkgs, "./"+p+"/internal/"+p+"/...")
	}
	// The go get lines name modules this repository requires, at its
	// versions (the new module requires them all already: go get itself
	// would load go.mod files the module cache need not hold).
	_, reqs, err := readGoMod(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range get {
		m, v, _ := strings.Cut(g, "@")
		if reqs[m] != v {
			t.Errorf("go get %s: this repository requires %s %s", g, m, reqs[m])
		}
	}
	// Every build tag of the tests compiles; the integration tests (and the
	// outbox's example) run in make test-integration's build, which has a
	// MySQL server to run them on.
	build := []string{"-tags", "integration"}
	if raceBuild { // make test's: the compiled dependencies are shared
		build = append(build, "-race")
	}
	goIn(t, dir, slices.Concat([]string{"vet"}, build, pkgs)...)
	args := []string{"test", "-count=1"}
	if raceBuild {
		args = append(args, "-race")
	}
	if integrationBuild {
		args = append(args, "-tags", "integration")
	}
	out := goIn(t, dir, append(args, pkgs...)...)
	t.Log(out)
	for _, p := range readmePatterns(t) {
		if !strings.Contains(out, "ok  \texample.com/lifted/"+p+"/internal/"+p+"\t") {
			t.Errorf("the lifted %s ran no tests of its own", p)
		}
	}
}

// TestCopyRefusesWhatADocDoesNotName: a pattern that imports the demo's
// own code is refused before anything is written, and the error names the
// file and the import.
func TestCopyRefusesWhatADocDoesNotName(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "go.mod"), "module example.com/demo\n\ngo 1.26\n")
	write(t, filepath.Join(src, "app", "user", "user.go"), "// Package user is the demo's own.\npackage user\n\n// Name is a name.\ntype Name string\n")
	write(t, filepath.Join(src, "internal", "greet", "greet.go"),
		"// Package greet greets.\n//\n// Depends on: the standard library only.\npackage greet\n\nimport \"example.com/demo/app/user\"\n\n// Hello greets n.\nfunc Hello(n user.Name) string { return \"hello \" + string(n) }\n")
	dst := t.TempDir()
	write(t, filepath.Join(dst, "go.mod"), "module example.com/mine\n")
	err := run([]string{"-from", src, "-to", filepath.Join(dst, "internal"), "greet"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "internal/greet/greet.go imports example.com/demo/app/user") {
		t.Fatalf("err = %v, want the file and the import named", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "internal")); !os.IsNotExist(err) {
		t.Errorf("something was written: %v", err)
	}
}

// TestCopyBringsWhatADocNames: a copy brings the patterns named, in turn,
// rewrites their imports, prints the go get lines, and never overwrites.
func TestCopyBringsWhatADocNames(t *testing.T) {
	dst := t.TempDir()
	write(t, filepath.Join(dst, "go.mod"), "module example.com/mine\n")
	var out bytes.Buffer
	if err := run([]string{"-from", repoRoot, "-to", filepath.Join(dst, "pkg"), "respond"}, &out); err != nil {
		t.Fatal(err)
	}
	// respond depends on requestid, which brings github.com/google/uuid;
	// requestid's tests bring logging, and logging httplabel.
	if !strings.Contains(out.String(), "copied respond, requestid, logging, httplabel into") || !strings.Contains(out.String(), "go get github.com/google/uuid@v") {
		t.Errorf("output:\n%s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dst, "pkg", "respond", "respond.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"example.com/mine/pkg/requestid"`) || strings.Contains(string(b), "failready/internal") {
		t.Errorf("respond.go's imports were not rewritten:\n%s", b)
	}
	if err := run([]string{"-from", repoRoot, "-to", filepath.Join(dst, "pkg"), "respond"}, &out); err == nil || !strings.Contains(err.Error(), "already there") {
		t.Errorf("a second copy over the first: %v", err)
	}
	if err := run([]string{"-from", repoRoot, "-to", filepath.Join(dst, "pkg"), "nosuch"}, &out); err == nil || !strings.Contains(err.Error(), `no pattern "nosuch"`) {
		t.Errorf("an unknown pattern: %v", err)
	}
}
