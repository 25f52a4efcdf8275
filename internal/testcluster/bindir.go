package testcluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const mainModule = "github.com/elmascale/elmascale"

// ErrBinariesMissing is wrapped by Start's error when a component binary is
// not there; the message says how to build it.
var ErrBinariesMissing = errors.New("test cluster binaries missing")

// resolveBinDir picks the binary directory: the explicit option, then
// $ELMASCALE_TESTBIN, then <repo>/bin found by walking up from the working
// directory (go test runs in the package directory) to the go.mod of the
// main module. hack/testcluster has a go.mod of its own, so the module
// line is checked rather than taking the first go.mod found.
func resolveBinDir(explicit string) (string, error) {
	if explicit != "" {
		return filepath.Abs(explicit)
	}
	if env := os.Getenv(EnvBinDir); env != "" {
		return filepath.Abs(env)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == mainModule {
			return filepath.Join(dir, "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testcluster: cannot find the %s repository root above the working directory; set %s", mainModule, EnvBinDir)
		}
		dir = parent
	}
}

// modulePath returns the module line of a go.mod file, or "".
func modulePath(goMod string) string {
	f, err := os.Open(goMod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// checkBinaries verifies that every binary the cluster will run exists and
// is executable.
func checkBinaries(dir string, withMetricsServer bool) error {
	var missing []string
	for _, name := range binaries {
		if name == "metrics-server" && !withMetricsServer {
			continue
		}
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("testcluster: %w: %s not found in %s; build them with `make testcluster` "+
			"(about 13 minutes the first time, compiled from Go modules) or point %s at a directory holding them",
			ErrBinariesMissing, strings.Join(missing, ", "), dir, EnvBinDir)
	}
	return nil
}
