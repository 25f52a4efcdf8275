package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/record"
)

var epoch = time.Unix(0, 0).UTC()

const goodConfig = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
interval: 10s
services:
  worker: {}
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Verifies that a reload with an invalid file keeps the config in force and
// counts a failure, and that a later valid file is taken.
func TestConfigSourceKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, goodConfig)
	var results []string
	src, err := NewConfigSource(path, nil, nil, func(r string) { results = append(results, r) })
	if err != nil {
		t.Fatal(err)
	}
	first := src.Current()

	writeFile(t, path, strings.Replace(goodConfig, "interval: 10s", "interval: banana", 1))
	src.Check()
	src.Check() // the same bad content is reported once
	if src.Current() != first {
		t.Errorf("invalid config replaced the one in force")
	}
	writeFile(t, path, strings.Replace(goodConfig, "interval: 10s", "interval: 20s", 1))
	src.Check()
	if got := src.Current().Interval; got != 20*time.Second {
		t.Errorf("interval after a valid reload = %v, want 20s", got)
	}
	if d := cmp.Diff([]string{record.ReloadFailure, record.ReloadSuccess}, results); d != "" {
		t.Errorf("reload results (-want,+got):\n%s", d)
	}
}

// Verifies that a valid config that needs a restart is rejected, not taken.
func TestConfigSourceRejectsNamespaceChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, goodConfig)
	adjust := func(c *config.Config) error {
		if c.Namespace != "shop" {
			return rejectError{"namespace changed"}
		}
		return nil
	}
	var results []string
	src, err := NewConfigSource(path, adjust, nil, func(r string) { results = append(results, r) })
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, strings.Replace(goodConfig, "shop", "other", 1))
	src.Check()
	if src.Current().Namespace != "shop" || len(results) != 1 || results[0] != record.ReloadRejected {
		t.Errorf("namespace %q, results %q; want shop and one rejection", src.Current().Namespace, results)
	}
}
