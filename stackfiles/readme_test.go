package stackfiles

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/failready/failready/internal/metrics"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(repoRoot + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configVars returns the variables a service's config.go reads, itself or
// through the shared readers it calls.
func configVars(t *testing.T, service string) []string {
	src := readFile(t, service+"/config.go")
	// Shared readers: pkg.ReadX(env, ...) reads variables in app/pkg.
	for _, m := range regexp.MustCompile(`(\w+)\.Read\w*\(env\b`).FindAllStringSubmatch(src, -1) {
		files, _ := filepath.Glob(repoRoot + "/app/" + m[1] + "/*.go")
		if len(files) == 0 {
			t.Fatalf("%s calls %s, whose package is not in app/", service, m[0])
		}
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				b, _ := os.ReadFile(f)
				src += string(b)
			}
		}
	}
	re := regexp.MustCompile(`env\.\w+\("([A-Z0-9_]+)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// readmeVars returns the variables the configuration table
// (docs/configuration.md) lists for a service.
func readmeVars(t *testing.T, service string) []string {
	row := regexp.MustCompile("^\\| ([a-z0-9, ]+) \\| `([A-Z0-9_]+)` \\|")
	var out []string
	for _, line := range strings.Split(readFile(t, "docs/configuration.md"), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, s := range strings.Split(m[1], ",") {
			if strings.TrimSpace(s) == service {
				out = append(out, m[2])
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestReadmeConfigTableMatchesCode: the README documents exactly the
// variables each service reads, and compose sets no variable a service
// ignores.
func TestReadmeConfigTableMatchesCode(t *testing.T) {
	p := loadCompose(t)
	for _, svc := range []string{"service1", "service2", "worker"} {
		code, doc := configVars(t, svc), readmeVars(t, svc)
		if len(code) < 5 {
			t.Fatalf("%s: found only %v in config.go", svc, code)
		}
		if !slices.Equal(code, doc) {
			t.Errorf("%s: config.go reads %v\nREADME documents %v", svc, code, doc)
		}
		for k := range p.Services[svc].Environment {
			if !slices.Contains(code, k) {
				t.Errorf("compose sets %s on %s, which does not read it", k, svc)
			}
		}
	}
}

// docs returns the README and every page under docs/, by path.
func docs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{"README.md": readFile(t, "README.md")}
	pages, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if len(pages) < 4 {
		t.Fatalf("only %d pages in docs/", len(pages))
	}
	for _, p := range pages {
		rel, _ := filepath.Rel(repoRoot, p)
		out[rel] = readFile(t, rel)
	}
	return out
}

// makefiles returns the Makefile and the tools' file it includes.
func makefiles(t *testing.T) string {
	t.Helper()
	mk := readFile(t, "Makefile")
	if !strings.Contains(mk, "\ninclude tools.mk\n") {
		t.Fatal("the Makefile does not include tools.mk")
	}
	return mk + "\n" + readFile(t, "tools.mk")
}

// TestMakefileFrontDoor: make help is in sections; every program from
// Debian's packages is installed through apt_install, which says so before
// apt-get runs.
func TestMakefileFrontDoor(t *testing.T) {
	mk := makefiles(t)
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^##@ (\w+)`).FindAllStringSubmatch(mk, -1) {
		sections = append(sections, m[1])
	}
	if want := []string{"Workshop", "Chaos", "Walkthroughs", "Tests", "Kubernetes", "Release", "Benchmarks", "Tools"}; !slices.Equal(sections, want) {
		t.Errorf("make help's sections %v, want %v", sections, want)
	}
	def := regexp.MustCompile(`(?s)define apt_install\n.*?endef\n`).FindString(mk)
	if !strings.Contains(def, "echo ") {
		t.Fatalf("apt_install does not announce itself:\n%s", def)
	}
	if n := strings.Count(strings.Replace(mk, def, "", 1), "apt-get install"); n > 0 {
		t.Errorf("%d apt-get install outside apt_install: announce them through it", n)
	}
	if n := strings.Count(mk, "$(call apt_install,"); n < 6 {
		t.Errorf("only %d programs installed through apt_install", n)
	}
}

// TestReadmeMakeTargetsExist: every `make X` the README and docs show is a
// target.
func TestReadmeMakeTargetsExist(t *testing.T) {
	mk := makefiles(t)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z0-9-]+):`).FindAllStringSubmatch(mk, -1) {
		targets[m[1]] = true
	}
	var all strings.Builder
	for _, text := range docs(t) {
		all.WriteString(text)
	}
	used := regexp.MustCompile("make ([a-z0-9-]+)").FindAllStringSubmatch(all.String(), -1)
	if len(used) < 5 {
		t.Fatalf("README shows only %d make commands", len(used))
	}
	for _, m := range used {
		if !targets[m[1]] {
			t.Errorf("README shows `make %s`, which the Makefile does not have", m[1])
		}
	}
	for _, want := range []string{"up", "down", "logs", "test", "test-integration", "e2e", "ci", "local"} {
		if !targets[want] {
			t.Errorf("Makefile lacks %s", want)
		}
	}
}

// TestCIRunsTheReadmeCommands: .ci/run runs make ci, and make ci runs the
// test tiers and the compose smoke.
func TestCIRunsTheReadmeCommands(t *testing.T) {
	if ci := readFile(t, ".ci/run"); !regexp.MustCompile(`(?m)^make ci$`).MatchString(ci) {
		t.Error(".ci/run does not run `make ci`")
	}
	m := regexp.MustCompile(`(?m)^ci: (.*?)(##|$)`).FindStringSubmatch(readFile(t, "Makefile"))
	if m == nil || strings.Fields(m[1])[0] != "test" || !slices.Contains(strings.Fields(m[1]), "test-integration") || !slices.Contains(strings.Fields(m[1]), "e2e") ||
		!slices.Contains(strings.Fields(m[1]), "compose-smoke") {
		t.Errorf("make ci must run test, test-integration, e2e and compose-smoke: %v", m)
	}
}

// dockerfileStages maps each runtime stage of the Dockerfile (FROM runtime
// AS name) to the binary it copies from the build stage.
func dockerfileStages(t *testing.T) map[string]string {
	t.Helper()
	df := readFile(t, "Dockerfile")
	out := map[string]string{}
	re := regexp.MustCompile(`(?m)^FROM runtime AS (\S+)\nCOPY --from=build /out/(\S+) /app$`)
	for _, m := range re.FindAllStringSubmatch(df, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// dockerfileBuild matches the Dockerfile's one go build command (a test in
// e2e runs it, cross-compiling as buildx would).
var dockerfileBuild = regexp.MustCompile(`(?m)CGO_ENABLED=0 GOOS=\$TARGETOS GOARCH=\$TARGETARCH go build (.*) -o /out/ (.*)$`)

// TestDockerfile: pinned base image on the builder's platform, cross
// compiled, BuildKit caches, every binary in one build, scratch, non-root,
// one stage per image.
func TestDockerfile(t *testing.T) {
	df := readFile(t, "Dockerfile")
	froms := regexp.MustCompile(`(?m)^FROM (--platform=\S+ )?(\S+) AS (\S+)$`).FindAllStringSubmatch(df, -1)
	if len(froms) < 3 {
		t.Fatalf("want a build stage, a runtime stage and the images, got %v", froms)
	}
	build := froms[0]
	if build[1] != "--platform=$BUILDPLATFORM " || build[3] != "build" {
		t.Errorf("the build stage must run on the builder's platform and cross-compile: %v", build[0])
	}
	if img := build[2]; !regexp.MustCompile(`^golang:\d+\.\d+\.\d+`).MatchString(img) {
		t.Errorf("build image %q is not pinned to a Go patch version", img)
	} else if goMod := readFile(t, "go.mod"); !strings.Contains(goMod, "go "+strings.TrimPrefix(strings.SplitN(img, "-", 2)[0], "golang:")) {
		t.Errorf("build image %s does not match go.mod's go version", img)
	}
	if froms[1][2] != "scratch" || froms[1][3] != "runtime" {
		t.Errorf("runtime stage %v, want scratch", froms[1][0])
	}
	for _, want := range []string{"ARG TARGETOS", "ARG TARGETARCH", "--mount=type=cache,target=/go/pkg/mod",
		"--mount=type=cache,target=/root/.cache/go-build", "-X main.version=${VERSION}", "USER 65532:65532", `ENTRYPOINT ["/app"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	m := dockerfileBuild.FindStringSubmatch(df)
	if m == nil {
		t.Fatal("no cross-compiling go build in the Dockerfile")
	}
	// One build for every image, and every image copies a binary it built.
	built := strings.Fields(m[2])
	for stage, bin := range dockerfileStages(t) {
		if !slices.ContainsFunc(built, func(pkg string) bool { return filepath.Base(pkg) == bin }) {
			t.Errorf("stage %s copies /out/%s, which the build does not make (%v)", stage, bin, built)
		}
	}
	for _, pkg := range built {
		if _, err := os.Stat(filepath.Join(repoRoot, pkg, "main.go")); err != nil {
			t.Errorf("the build names %s, not a main package", pkg)
		}
	}
}

// TestReadmeMetricCatalog: the catalog table (docs/metrics.md) lists exactly
// the catalog's metrics, with their types and labels.
func TestReadmeMetricCatalog(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| (histogram|counter|gauge) \\| [^|]+ \\| ([a-z_, ]+) \\|")
	rows := map[string][]string{}
	types := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(readFile(t, "docs/metrics.md"), -1) {
		rows[m[1]] = strings.Split(strings.ReplaceAll(m[3], " ", ""), ",")
		types[m[1]] = m[2]
	}
	cat := metrics.Catalog()
	if len(rows) != len(cat) {
		t.Errorf("README lists %d metrics, the catalog %d", len(rows), len(cat))
	}
	for _, m := range cat {
		labels, ok := rows[m.Prometheus]
		if !ok {
			t.Errorf("README's catalog lacks %s", m.Prometheus)
			continue
		}
		if types[m.Prometheus] != m.Type || !slices.Equal(labels, m.Labels) {
			t.Errorf("README: %s %s %v; catalog: %s %v", m.Prometheus, types[m.Prometheus], labels, m.Type, m.Labels)
		}
	}
}

// TestDocLinksResolve: every relative link in the README and docs/ names a
// file that exists and, with a #fragment, a heading of that file.
func TestDocLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	pages := docs(t)
	for page, text := range pages {
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), path)
				if _, err := os.Stat(filepath.Join(repoRoot, file)); err != nil {
					t.Errorf("%s links to %s, which does not exist", page, target)
					continue
				}
			}
			if frag != "" && !slices.Contains(headingSlugs(readFile(t, file)), frag) {
				t.Errorf("%s links to %s: %s has no such heading", page, target, file)
			}
		}
	}
}

// headingSlugs returns the anchors GitHub makes of a page's headings.
func headingSlugs(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(text, -1) {
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, m[1])
		out = append(out, slug)
	}
	return out
}

// TestReadmePatternTableDependsOn: for every pattern package the README's
// table names, its "depends on" cell is what the package doc says (and so,
// by TestPackageDocsNameTheirDependencies, what it imports).
func TestReadmePatternTableDependsOn(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| [^|]+ \\| \\[`internal/([a-z/]+?)(/[a-z_]+\\.go)?`\\]\\([^)]+\\) \\| ([^|]+) \\|")
	pkgs := map[string]goPackage{}
	for _, p := range listPackages(t, false, "./internal/...") {
		pkgs[strings.TrimPrefix(p.ImportPath, module+"internal/")] = p
	}
	seen := 0
	for _, m := range row.FindAllStringSubmatch(readFile(t, "README.md"), -1) {
		name, cell := m[1], strings.TrimSpace(m[3])
		p, ok := pkgs[name]
		if !ok {
			t.Errorf("README names internal/%s, which is not a package", name)
			continue
		}
		seen++
		if cell == "(as above)" {
			continue
		}
		declared, _ := declaredDeps(packageDoc(t, p))
		var want []string
		for _, d := range declared {
			want = append(want, strings.TrimPrefix(d, "internal/"))
		}
		var got []string
		if cell != "standard library" {
			for _, d := range strings.Split(cell, ",") {
				got = append(got, strings.TrimSpace(d))
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("README: internal/%s depends on %q; its package doc says %q", name, got, want)
		}
	}
	if seen < 15 {
		t.Fatalf("only %d pattern rows found in the README", seen)
	}
}

// fileImports returns the imports of one Go file, this module's as
// internal/x or app/x.
func fileImports(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, path), nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var imps []string
	for _, s := range f.Imports {
		imps = append(imps, strings.Trim(s.Path.Value, `"`))
	}
	return nonStd(imps)
}

// TestReadmeDemoTableUses: the README's table of the demo's own code says
// exactly what each file or app/ package imports (patterns by their short
// name, app/x, modules by a path that covers their packages).
func TestReadmeDemoTableUses(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| [^|]+ \\| \\[`((?:app|service1|service2|worker|cmd)/[a-z0-9/._]+)`\\]\\([^)]+\\) \\| ([^|]+) \\|")
	rows := row.FindAllStringSubmatch(readFile(t, "README.md"), -1)
	if len(rows) < 8 {
		t.Fatalf("only %d rows of the demo's own code found in the README", len(rows))
	}
	for _, m := range rows {
		where, cell := m[1], strings.TrimSpace(m[2])
		var imports []string
		if strings.HasSuffix(where, ".go") {
			imports = fileImports(t, where)
		} else {
			p := listPackages(t, false, "./"+where)
			imports = nonStd(p[0].Imports)
		}
		var uses []string
		if cell != "standard library" {
			for _, d := range strings.Split(cell, ",") {
				d = strings.TrimSpace(d)
				if !strings.Contains(d, "/") {
					d = "internal/" + d
				}
				uses = append(uses, d)
			}
		}
		notNamed, notImported := unnamed(imports, uses)
		for _, imp := range notNamed {
			t.Errorf("README: %s imports %s, which its \"uses\" cell does not name (%s)", where, imp, cell)
		}
		for _, d := range notImported {
			t.Errorf("README: %s's \"uses\" cell names %s, which it does not import", where, d)
		}
	}
}
