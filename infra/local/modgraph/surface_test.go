package modgraph

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/shared/golden"
)

// authorFacing are the packages a bot author uses: their exported identifiers are the
// framework's public surface, written to testdata/surface.txt so that a change to it is a
// deliberate one (run the test with -update and review the diff).
var authorFacing = []string{"worker", "worker/relay", "worker/relay/relaytest", "worker/agent", "worker/engine"}

// exported lists a package's exported identifiers: top-level names, exported methods of
// exported types, exported fields of exported structs and methods of exported interfaces.
// Test files are left out.
func exported(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					if d.Recv == nil {
						names = append(names, "func "+d.Name.Name)
						continue
					}
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					if ix, ok := recv.(*ast.IndexExpr); ok {
						recv = ix.X
					}
					if id, ok := recv.(*ast.Ident); ok && id.IsExported() {
						names = append(names, "method "+id.Name+"."+d.Name.Name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() {
									names = append(names, strings.ToLower(d.Tok.String())+" "+n.Name)
								}
							}
						case *ast.TypeSpec:
							if !s.Name.IsExported() {
								continue
							}
							names = append(names, "type "+s.Name.Name)
							switch ty := s.Type.(type) {
							case *ast.StructType:
								for _, fl := range ty.Fields.List {
									for _, n := range fl.Names {
										if n.IsExported() {
											names = append(names, "field "+s.Name.Name+"."+n.Name)
										}
									}
								}
							case *ast.InterfaceType:
								for _, fl := range ty.Methods.List {
									for _, n := range fl.Names {
										if n.IsExported() {
											names = append(names, "method "+s.Name.Name+"."+n.Name)
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

func TestPublicSurface(t *testing.T) {
	var b strings.Builder
	b.WriteString("# The exported identifiers of the author-facing packages (TestPublicSurface; -update rewrites).\n")
	for _, pkg := range authorFacing {
		names := exported(t, filepath.Join(root(t), filepath.FromSlash(pkg)))
		kinds := map[string]int{}
		for _, n := range names {
			kinds[strings.Fields(n)[0]]++
		}
		fmt.Fprintf(&b, "\n## %s: %d (%d top-level, %d methods, %d fields)\n", pkg, len(names),
			kinds["func"]+kinds["type"]+kinds["const"]+kinds["var"], kinds["method"], kinds["field"])
		for _, n := range names {
			b.WriteString(n + "\n")
		}
	}
	if err := golden.Check("testdata/surface.txt", []byte(b.String())); err != nil {
		t.Fatal(err)
	}
}
