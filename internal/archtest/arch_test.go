package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/elmascale/elmascale"

type goFile struct {
	pkgDir  string // relative to the repo root
	path    string
	imports []string
	ast     *ast.File
}

// load parses every non-test Go file of the main module.
func load(t *testing.T) []goFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var files []goFile
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// Other modules, build output and hidden directories are not ours to check.
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata" || d.Name() == "out") {
				return filepath.SkipDir
			}
			if rel != "." {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		full, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		gf := goFile{pkgDir: filepath.ToSlash(filepath.Dir(rel)), path: rel, ast: full}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			gf.imports = append(gf.imports, p)
		}
		files = append(files, gf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("found no Go files")
	}
	return files
}

func isStdlib(path string) bool {
	first := strings.SplitN(path, "/", 2)[0]
	return !strings.Contains(first, ".")
}

// Verifies that policy imports the standard library only and never reads
// the clock or the global random source: time comes in as an argument.
func TestPolicyIsPure(t *testing.T) {
	forbiddenCalls := map[string]map[string]bool{
		"time": {"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "Tick": true, "NewTimer": true, "NewTicker": true},
		"rand": {"*": true},
		"os":   {"*": true},
	}
	checked := 0
	for _, f := range load(t) {
		if f.pkgDir != "policy" {
			continue
		}
		checked++
		for _, imp := range f.imports {
			if !isStdlib(imp) {
				t.Errorf("%s imports %s: policy may import the standard library only", f.path, imp)
			}
			switch imp {
			case "net", "net/http", "os", "os/exec", "math/rand", "math/rand/v2", "io/ioutil", "syscall", "unsafe":
				t.Errorf("%s imports %s: policy does no I/O and draws no random numbers", f.path, imp)
			}
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if names, bad := forbiddenCalls[x.Name]; bad && (names["*"] || names[sel.Sel.Name]) {
				t.Errorf("%s uses %s.%s: policy takes time and randomness as arguments", f.path, x.Name, sel.Sel.Name)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no policy files found")
	}
}

// Verifies the direction of imports DESIGN.md sets: everything points at
// policy; collector and scaler never import each other; nothing imports cmd.
func TestImportDirections(t *testing.T) {
	rules := []struct {
		from, to string
	}{
		{"collector", "scaler"},
		{"scaler", "collector"},
		{"policy", module},
		{"config", module + "/collector"},
		{"config", module + "/scaler"},
		{"config", module + "/daemon"},
		{"collector", module + "/daemon/"}, // the daemon root package defines the interfaces; its children are not for sources
		{"simulations", module + "/collector"},
		{"simulations", module + "/scaler"},
		// The daemon root package is the loop's contract, which the others implement.
		{"daemon$", module + "/collector"},
		{"daemon$", module + "/scaler"},
		{"daemon$", module + "/simulations"},
	}
	// A rule's from names a package and its subpackages, or with a trailing
	// $ the package alone.
	inside := func(dir, pkg string) bool {
		if exact, ok := strings.CutSuffix(pkg, "$"); ok {
			return dir == exact
		}
		return dir == pkg || strings.HasPrefix(dir, pkg+"/")
	}
	for _, f := range load(t) {
		for _, imp := range f.imports {
			if strings.HasPrefix(imp, module+"/cmd") {
				t.Errorf("%s imports %s: nothing imports cmd/", f.path, imp)
			}
			own := strings.TrimPrefix(imp, module+"/")
			for _, r := range rules {
				if inside(f.pkgDir, r.from) && strings.HasPrefix(imp, r.to) && !inside(own, r.from) {
					t.Errorf("%s imports %s: %s must not depend on it", f.path, imp, r.from)
				}
			}
		}
	}
}
