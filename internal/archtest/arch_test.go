package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

// allowed lists, for each package of the module, the module packages its
// non-test code may import (docs/architecture.md has the same table). A
// package not listed may import nothing of the module; a listed prefix
// ending in "/" admits every package below it. Everything points towards
// policy: the loop's contract imports no implementation of it, sources and
// the scaler never import each other, recording never imports the daemon.
var allowed = map[string][]string{
	"policy":               {},
	"config":               {"policy", "deploy"},
	"api/v1alpha1":         {"config"},
	"loop":                 {"policy", "config"},
	"collector":            {"policy", "config", "loop"},
	"scaler":               {"policy", "config", "loop"},
	"record":               {"policy", "loop"},
	"daemon":               {"policy", "config", "api/v1alpha1", "loop", "record", "scaler", "collector", "doctor", "internal/version"},
	"doctor":               {"policy", "config", "loop", "collector", "scaler"},
	"importer":             {"config", "scaler"},
	"simulations":          {"policy", "config", "loop"},
	"simulations/demo":     {"policy", "config", "loop", "record", "collector", "simulations"},
	"simulations/report":   {"simulations"},
	"dashboard":            {},
	"deploy":               {},
	"internal/version":     {},
	"internal/testcluster": {},
	"internal/promtest":    {},
	"internal/rabbittest":  {},
	"internal/kubetest":    {"collector", "internal/testcluster"},
	"cmd/elmascale":        {"*"},
}

// importViolations checks one package's module imports against allowed
// and returns a sentence per import that runs the wrong way.
func importViolations(pkgDir string, imports []string) []string {
	var bad []string
	rules, known := allowed[pkgDir]
	for _, imp := range imports {
		own, ok := strings.CutPrefix(imp, module+"/")
		if !ok {
			continue
		}
		if strings.HasPrefix(own, "cmd/") {
			bad = append(bad, "imports "+imp+": nothing imports cmd/")
			continue
		}
		if !known {
			bad = append(bad, "imports "+imp+": package "+pkgDir+" is not in archtest's table; add it with what it may import")
			continue
		}
		if own == pkgDir || slices.Contains(rules, "*") || slices.Contains(rules, own) {
			continue
		}
		bad = append(bad, "imports "+imp+": "+pkgDir+" may import only "+strings.Join(rules, ", ")+" of the module")
	}
	return bad
}

// Verifies the direction of imports DESIGN.md sets, for every non-test Go
// file of the module.
func TestImportDirections(t *testing.T) {
	for _, f := range load(t) {
		for _, v := range importViolations(f.pkgDir, f.imports) {
			t.Errorf("%s %s", f.path, v)
		}
	}
}

// Verifies that the rules catch imports that run back up, so a passing
// TestImportDirections means something.
func TestImportRulesCatchWrongDirections(t *testing.T) {
	wrong := []struct{ pkg, imp string }{
		{"loop", "collector"},
		{"loop", "scaler"},
		{"loop", "record"},
		{"loop", "daemon"},
		{"loop", "simulations"},
		{"collector", "daemon"},
		{"collector", "scaler"},
		{"collector", "record"},
		{"scaler", "collector"},
		{"record", "daemon"},
		{"record", "scaler"},
		{"policy", "config"},
		{"config", "loop"},
		{"simulations", "collector"},
		{"simulations", "daemon"},
		{"importer", "daemon"},
		{"daemon", "cmd/elmascale"},
		{"newpackage", "policy"},
	}
	for _, w := range wrong {
		if got := importViolations(w.pkg, []string{module + "/" + w.imp}); len(got) == 0 {
			t.Errorf("%s importing %s passes the rules", w.pkg, w.imp)
		}
	}
	if got := importViolations("record", []string{module + "/loop", module + "/policy", "github.com/prometheus/client_golang/prometheus"}); len(got) != 0 {
		t.Errorf("allowed imports refused: %v", got)
	}
}
