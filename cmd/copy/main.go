// Command copy lifts patterns out of this repository into another module:
// each pattern's folder under internal/ (its test kit included), and the
// patterns its package docs name ("Depends on:" and "Tests use:"), with the
// imports rewritten to the target; then it prints the go get lines the copy
// needs, at the versions this repository is tested with.
//
//	go run ./cmd/copy -to ../mysvc/internal retry breaker
//	go run ./cmd/copy -list
//
// It refuses, naming the file and the import, when a pattern imports
// something of this repository that its doc does not name (the demo's own
// code, the dev stack): what it copies builds on its own. It never
// overwrites: a folder already in the target stops it before anything is
// written. make test copies every pattern of the README's table this way
// into a fresh module and runs its tests there (the lift proof).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "copy:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("copy", flag.ContinueOnError)
	to := flags.String("to", "", "the folder to copy into, inside the target module (a go.mod above it)")
	from := flags.String("from", ".", "this repository's root")
	list := flags.Bool("list", false, "list the patterns and what each brings, and exit")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: go run ./cmd/copy -to DIR PATTERN... (go run ./cmd/copy -list: the patterns)")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	src, err := readSource(*from)
	if err != nil {
		return err
	}
	if *list {
		return src.list(stdout)
	}
	if *to == "" || flags.NArg() == 0 {
		flags.Usage()
		return errors.New("-to and at least one pattern are needed")
	}
	c, err := src.copy(flags.Args(), *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %s into %s (imported as %s/...)\n", strings.Join(c.patterns, ", "), c.dir, c.importBase)
	if len(c.goGet) > 0 {
		fmt.Fprintln(stdout, "then, in the target module:")
		for _, g := range c.goGet {
			fmt.Fprintln(stdout, "  go get "+g)
		}
	}
	return nil
}

// source is this repository: its module path, its requirements, and the
// patterns under internal/.
type source struct {
	root, module string
	requires     map[string]string // module path -> version
}

func readSource(root string) (*source, error) {
	module, reqs, err := readGoMod(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "internal")); err != nil {
		return nil, fmt.Errorf("%s has no internal/: run this from the repository's root, or give -from", root)
	}
	return &source{root: root, module: module, requires: reqs}, nil
}

// readGoMod returns a go.mod's module path and its requirements.
func readGoMod(path string) (module string, requires map[string]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	requires = map[string]string{}
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 2 && fields[0] == "module":
			module = strings.Trim(fields[1], `"`)
		case len(fields) >= 2 && fields[0] == "require" && fields[1] == "(":
			inBlock = true
		case inBlock && len(fields) == 1 && fields[0] == ")":
			inBlock = false
		case inBlock && len(fields) == 2:
			requires[fields[0]] = fields[1]
		case len(fields) == 3 && fields[0] == "require":
			requires[fields[1]] = fields[2]
		}
	}
	if module == "" {
		return "", nil, fmt.Errorf("%s: no module line", path)
	}
	return module, requires, sc.Err()
}

// namedPattern matches a package a doc names: internal/x, or a package
// below it (a test kit: internal/logging/logtest), which comes alone.
var namedPattern = regexp.MustCompile(`\binternal/([a-z0-9/]*[a-z0-9])`)

// names returns the packages the package docs in a pattern's folder (and
// the folders below it) name in their "Depends on:" and "Tests use:"
// paragraphs.
func (s *source) names(pattern string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(filepath.Join(s.root, "internal", pattern), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		if f.Doc == nil {
			return nil
		}
		for _, label := range []string{"Depends on:", "Tests use:"} {
			_, after, ok := strings.Cut(f.Doc.Text(), label)
			if !ok {
				continue
			}
			para, _, _ := strings.Cut(after, "\n\n")
			for _, m := range namedPattern.FindAllStringSubmatch(para, -1) {
				if !covers(pattern, m[1]) && !slices.Contains(out, m[1]) {
					out = append(out, m[1])
				}
			}
		}
		return nil
	})
	return out, err
}

// covers says whether copying folder brings package pkg (both relative to
// internal/): the folder itself or one below it.
func covers(folder, pkg string) bool { return pkg == folder || strings.HasPrefix(pkg, folder+"/") }

// closure returns the patterns asked for and every package they name, in
// turn, in the order first met; a package below a folder already there
// comes with it.
func (s *source) closure(patterns []string) ([]string, error) {
	for _, p := range patterns {
		if st, err := os.Stat(filepath.Join(s.root, "internal", p)); err != nil || !st.IsDir() || strings.ContainsAny(p, `/\.`) {
			return nil, fmt.Errorf("no pattern %q under internal/ (go run ./cmd/copy -list)", p)
		}
	}
	var out []string
	queue := slices.Clone(patterns)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if slices.ContainsFunc(out, func(f string) bool { return covers(f, p) }) {
			continue
		}
		if st, err := os.Stat(filepath.Join(s.root, "internal", p)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("a doc names internal/%s, which is not a folder", p)
		}
		// A folder that comes now brings what was below it.
		out = slices.DeleteFunc(out, func(f string) bool { return covers(p, f) })
		out = append(out, p)
		named, err := s.names(p)
		if err != nil {
			return nil, err
		}
		queue = append(queue, named...)
	}
	return out, nil
}

func (s *source) list(w io.Writer) error {
	entries, err := os.ReadDir(filepath.Join(s.root, "internal"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		all, err := s.closure([]string{e.Name()})
		if err != nil {
			return err
		}
		if len(all) == 1 {
			fmt.Fprintf(w, "%-12s alone\n", e.Name())
		} else {
			fmt.Fprintf(w, "%-12s with %s\n", e.Name(), strings.Join(all[1:], ", "))
		}
	}
	return nil
}

// copied is what a copy did.
type copied struct {
	patterns        []string
	dir, importBase string
	goGet           []string // module@version
}

// file is one file to write: its place in the target and its content.
type file struct {
	dst  string
	data []byte
}

// copy plans the whole copy first (every import checked and rewritten, every
// folder free), then writes it.
func (s *source) copy(patterns []string, to string) (*copied, error) {
	all, err := s.closure(patterns)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(to)
	if err != nil {
		return nil, err
	}
	importBase, err := importPathOf(dir)
	if err != nil {
		return nil, err
	}
	c := &copied{patterns: all, dir: dir, importBase: importBase}
	var files []file
	modules := map[string]bool{}
	for _, p := range all {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			return nil, fmt.Errorf("%s is already there: remove it first (nothing was copied)", filepath.Join(dir, p))
		}
		root := filepath.Join(s.root, "internal", p)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join(s.root, "internal"), path)
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.HasSuffix(path, ".go") {
				if data, err = s.rewrite(rel, data, all, importBase, modules); err != nil {
					return err
				}
			}
			files = append(files, file{filepath.Join(dir, rel), data})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for m := range modules {
		c.goGet = append(c.goGet, m+"@"+s.requires[m])
	}
	slices.Sort(c.goGet)
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(f.dst, f.data, 0o644); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// rewrite points a Go file's imports of the copied patterns at the target,
// refuses any other import of this repository, and notes the module of
// every other non-standard import.
func (s *source) rewrite(rel string, data []byte, patterns []string, importBase string, modules map[string]bool) ([]byte, error) {
	f, err := parser.ParseFile(token.NewFileSet(), rel, data, parser.ImportsOnly)
	if err != nil {
		return nil, err
	}
	out := string(data)
	for _, spec := range f.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		if path == s.module || strings.HasPrefix(path, s.module+"/") {
			rest := strings.TrimPrefix(path, s.module+"/")
			pkg := strings.TrimPrefix(rest, "internal/")
			if !strings.HasPrefix(rest, "internal/") || !slices.ContainsFunc(patterns, func(f string) bool { return covers(f, pkg) }) {
				return nil, fmt.Errorf("internal/%s imports %s, which is not among what it names (%s): a pattern copies only with what its doc names",
					filepath.ToSlash(rel), path, strings.Join(patterns, ", "))
			}
			out = strings.Replace(out, spec.Path.Value, strconv.Quote(importBase+"/"+strings.TrimPrefix(rest, "internal/")), 1)
			continue
		}
		if !strings.Contains(strings.Split(path, "/")[0], ".") {
			continue // the standard library
		}
		m := s.moduleOf(path)
		if m == "" {
			return nil, fmt.Errorf("internal/%s imports %s, which no requirement of %s/go.mod provides", filepath.ToSlash(rel), path, s.root)
		}
		modules[m] = true
	}
	return []byte(out), nil
}

// moduleOf returns the required module that provides an import path (the
// longest that prefixes it).
func (s *source) moduleOf(path string) string {
	best := ""
	for m := range s.requires {
		if (path == m || strings.HasPrefix(path, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	return best
}

// importPathOf returns the import path of a folder: the module path of the
// go.mod above it, and the folder's place below that.
func importPathOf(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			module, _, err := readGoMod(filepath.Join(d, "go.mod"))
			if err != nil {
				return "", err
			}
			rel, _ := filepath.Rel(d, dir)
			if rel == "." {
				return module, nil
			}
			return module + "/" + filepath.ToSlash(rel), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s: -to must be inside the module to copy into", dir)
		}
	}
}
