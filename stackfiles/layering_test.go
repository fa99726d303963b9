package stackfiles

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/failready/failready/"

type goPackage struct {
	ImportPath, Name, Dir     string
	GoFiles                   []string
	Imports                   []string
	TestImports, XTestImports []string
}

// packageDoc returns the whole package comment (go list's Doc is only its
// first sentence).
func packageDoc(t *testing.T, p goPackage) string {
	t.Helper()
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if file.Doc != nil {
			return file.Doc.Text()
		}
	}
	return ""
}

// listPackages runs go list over patterns, with deps when asked.
func listPackages(t *testing.T, deps bool, patterns ...string) []goPackage {
	t.Helper()
	args := []string{"list", "-json", "-tags=integration"} // integration tests hold imports too
	if deps {
		args = append(args, "-deps")
	}
	cmd := exec.Command("go", append(args, patterns...)...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

var depToken = regexp.MustCompile(`\b((?:internal|app)/[a-z/]+[a-z]|[a-z0-9-]+\.[a-z.]+/[\w./-]+\w)`)

// declaredDeps returns what a package's doc comment says it depends on (its
// "Depends on:" paragraph), as internal/x and app/x paths and module paths; ok is false
// when the doc has no such paragraph.
func declaredDeps(doc string) (deps []string, ok bool) {
	_, after, ok := strings.Cut(doc, "Depends on:")
	if !ok {
		return nil, false
	}
	para, _, _ := strings.Cut(after, "\n\n")
	for _, m := range depToken.FindAllString(para, -1) {
		if !slices.Contains(deps, m) {
			deps = append(deps, m)
		}
	}
	return deps, true
}

// nonStd returns a package's imports that are not the standard library,
// this module's as internal/x.
func nonStd(imports []string) []string {
	var out []string
	for _, imp := range imports {
		if rest, ok := strings.CutPrefix(imp, module); ok {
			out = append(out, rest)
		} else if strings.Contains(strings.Split(imp, "/")[0], ".") {
			out = append(out, imp)
		}
	}
	return out
}

// declaredTestDeps returns what a package's doc says its tests use beyond
// what it depends on (its "Tests use:" paragraph; none without one).
func declaredTestDeps(doc string) []string {
	_, after, ok := strings.Cut(doc, "Tests use:")
	if !ok {
		return nil
	}
	para, _, _ := strings.Cut(after, "\n\n")
	return depToken.FindAllString(para, -1)
}

func covers(dep, imp string) bool { return imp == dep || strings.HasPrefix(imp, dep+"/") }

// unnamed returns the imports no name covers, and the names that cover no
// import: what a list of dependencies gets wrong both ways.
func unnamed(imports, names []string) (notNamed, notImported []string) {
	for _, imp := range imports {
		if !slices.ContainsFunc(names, func(d string) bool { return covers(d, imp) }) {
			notNamed = append(notNamed, imp)
		}
	}
	for _, d := range names {
		if !slices.ContainsFunc(imports, func(imp string) bool { return covers(d, imp) }) {
			notImported = append(notImported, d)
		}
	}
	return notNamed, notImported
}

// TestPackageDocsNameTheirDependencies: every package under internal/ and app/ says
// in its doc comment what else it needs ("Depends on: ..."), and that is
// exactly what it imports: a reader who copies one folder knows what comes
// with it.
func TestPackageDocsNameTheirDependencies(t *testing.T) {
	pkgs := listPackages(t, false, "./internal/...", "./app/...")
	if len(pkgs) < 20 {
		t.Fatalf("only %d packages under internal/ and app/", len(pkgs))
	}
	for _, p := range pkgs {
		name := strings.TrimPrefix(p.ImportPath, module)
		declared, ok := declaredDeps(packageDoc(t, p))
		if !ok {
			t.Errorf("%s: the package doc has no \"Depends on:\" paragraph", name)
			continue
		}
		notNamed, notImported := unnamed(nonStd(p.Imports), declared)
		for _, imp := range notNamed {
			t.Errorf("%s imports %s, which its doc's \"Depends on\" does not name (%v)", name, imp, declared)
		}
		for _, d := range notImported {
			t.Errorf("%s: its doc names %s, which it does not import", name, d)
		}
		// Its tests: what they import beyond that is its "Tests use:"
		// paragraph, so that a copy with its tests knows what comes too.
		var testOnly []string
		for _, imp := range nonStd(slices.Concat(p.TestImports, p.XTestImports)) {
			if imp != name && !slices.ContainsFunc(declared, func(d string) bool { return covers(d, imp) }) {
				testOnly = append(testOnly, imp)
			}
		}
		testDeclared := declaredTestDeps(packageDoc(t, p))
		notNamed, notImported = unnamed(testOnly, testDeclared)
		for _, imp := range notNamed {
			t.Errorf("%s's tests import %s, which its doc's \"Tests use:\" does not name (%v)", name, imp, testDeclared)
		}
		for _, d := range notImported {
			t.Errorf("%s: its doc's \"Tests use:\" names %s, which its tests do not import beyond its own dependencies", name, d)
		}
	}
}

// TestLayering: the layering rules (README, "Where each pattern lives")
// that an import listing can check.
func TestLayering(t *testing.T) {
	// Nothing a binary links imports testing.
	for _, p := range listPackages(t, true, "./cmd/...", "./service1", "./service2") {
		if p.ImportPath == "testing" {
			t.Error("a binary links the testing package; go list -deps ./cmd/... ./service1 ./service2 shows which")
		}
		if slices.Contains(p.Imports, "testing") {
			t.Errorf("%s imports testing and is linked into a binary", p.ImportPath)
		}
	}
	for _, p := range listPackages(t, false, "./...") {
		name := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range nonStd(p.Imports) {
			// Only the services' config.go and serviceconfig read the
			// environment: the pattern packages take typed options.
			if imp == "internal/envconfig" && p.Name != "main" && !strings.HasPrefix(name, "app/") {
				t.Errorf("%s imports envconfig; pattern packages take typed options", name)
			}
			// Patterns and the dev stack never import upward (into the
			// commands), and the services never import each other (Go
			// forbids importing a main package anyway).
			if (strings.HasPrefix(name, "internal/") || strings.HasPrefix(name, "app/") || strings.HasPrefix(name, "devstack")) &&
				(strings.HasPrefix(imp, "cmd/") || strings.HasPrefix(imp, "service") || imp == "worker") {
				t.Errorf("%s imports %s", name, imp)
			}
		}
		// Nothing in internal/, its tests included, imports the demo's own
		// code (app/) or the dev stack: every pattern lifts into another
		// module with only what its doc names.
		if strings.HasPrefix(name, "internal/") {
			for _, imp := range nonStd(slices.Concat(p.Imports, p.TestImports, p.XTestImports)) {
				if strings.HasPrefix(imp, "app/") || imp == "devstack" || strings.HasPrefix(imp, "devstack/") {
					t.Errorf("%s imports %s: a pattern must not reach into the demo's own code or the dev stack", name, imp)
				}
			}
		}
	}
}

// TestEveryPatternHasAnExample: every pattern under internal/ has a
// runnable Example whose output go test checks: the smallest real use.
func TestEveryPatternHasAnExample(t *testing.T) {
	dirs, err := os.ReadDir(filepath.Join(repoRoot, "internal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(repoRoot, "internal", d.Name(), "example*_test.go"))
		ok := false
		for _, f := range files {
			b, _ := os.ReadFile(f)
			ok = ok || regexp.MustCompile(`(?s)func Example\w*\(\) \{.*?// Output:\n\t// \S`).Match(b)
		}
		if !ok {
			t.Errorf("internal/%s has no Example with a checked // Output:", d.Name())
		}
	}
}
