package stackfiles

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusalWritersEqual: the guards that take the writer of their
// refusal (shed, ratelimit, recoverer, health) each keep a JSON writer of
// their own, so that each lifts alone; the four are one design, copied:
// the same Refuse type and the same jsonRefusal, byte for byte (comments
// aside).
func TestRefusalWritersEqual(t *testing.T) {
	var first, firstPkg string
	for _, pkg := range []string{"shed", "ratelimit", "recoverer", "health"} {
		files, _ := filepath.Glob(filepath.Join(repoRoot, "internal", pkg, "*.go"))
		var got bytes.Buffer
		fset := token.NewFileSet()
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Name.Name == "jsonRefusal" {
						_ = printer.Fprint(&got, fset, d)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == "Refuse" {
							_ = printer.Fprint(&got, fset, ts)
						}
					}
				}
			}
		}
		if !bytes.Contains(got.Bytes(), []byte("func jsonRefusal")) || !bytes.Contains(got.Bytes(), []byte("Refuse func")) {
			t.Errorf("internal/%s has no Refuse type and jsonRefusal writer:\n%s", pkg, got.String())
			continue
		}
		if first == "" {
			first, firstPkg = got.String(), pkg
		} else if got.String() != first {
			t.Errorf("internal/%s's refusal writer differs from internal/%s's:\n%s\nvs\n%s", pkg, firstPkg, got.String(), first)
		}
	}
}
