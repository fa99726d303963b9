// Package runbook reads the runbook pages of docs/runbooks: the alert a
// page is for (its file name), the fault that brings the alert on (an
// HTML comment, "<!-- fault: NAME -->"), and its first queries (fenced
// blocks tagged promql, logql and jaeger), so that tests can hold the
// pages to the alert rules and run every query during the fault.
package runbook

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Dir is where the pages are, relative to the repository.
const Dir = "docs/runbooks"

// Query is one fenced query of a page.
type Query struct {
	Kind string // promql, logql or jaeger (a Jaeger search's query string)
	Text string
}

// Page is one alert's runbook.
type Page struct {
	Alert   string // the file's name without .md
	Path    string // relative to the repository
	Fault   string
	Queries []Query
}

var (
	faultRE = regexp.MustCompile(`<!-- fault: ([a-z0-9-]+) -->`)
	fenceRE = regexp.MustCompile("(?ms)^```(promql|logql|jaeger)\n(.*?)\n```$")
)

// Kinds are the query kinds every page has at least one of.
var Kinds = []string{"promql", "logql", "jaeger"}

// Read returns every page under root's Dir but its README.
func Read(root string) ([]Page, error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, "*.md"))
	if err != nil {
		return nil, err
	}
	var pages []Page
	for _, f := range files {
		if filepath.Base(f) == "README.md" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		p := Page{Alert: strings.TrimSuffix(filepath.Base(f), ".md"), Path: Dir + "/" + filepath.Base(f)}
		if m := faultRE.FindSubmatch(b); m != nil {
			p.Fault = string(m[1])
		}
		for _, m := range fenceRE.FindAllSubmatch(b, -1) {
			p.Queries = append(p.Queries, Query{Kind: string(m[1]), Text: strings.TrimSpace(string(m[2]))})
		}
		pages = append(pages, p)
	}
	if len(pages) == 0 {
		return nil, fmt.Errorf("no runbook under %s", filepath.Join(root, Dir))
	}
	return pages, nil
}
