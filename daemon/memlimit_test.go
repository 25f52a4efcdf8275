package daemon

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// Verifies the container memory limit is read from cgroup v2 and v1 files,
// "max" and v1's unlimited value mean none, and the runtime's soft limit is
// set below it unless GOMEMLIMIT is set.
func TestMemoryLimitFromCgroup(t *testing.T) {
	write := func(t *testing.T, root, rel, v string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file, value string
		want              int64
	}{
		{"v2", "memory.max", "134217728", 128 << 20},
		{"v2 unlimited", "memory.max", "max", 0},
		{"v1", "memory/memory.limit_in_bytes", "268435456", 256 << 20},
		{"v1 unlimited", "memory/memory.limit_in_bytes", "9223372036854771712", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, tc.file, tc.value)
			if got, _ := cgroupMemoryLimit(root); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
		})
	}

	root := t.TempDir()
	write(t, root, "memory.max", "134217728")
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")
	got, from := setMemoryLimit(root)
	if want := int64(0.75 * (128 << 20)); got != want || debug.SetMemoryLimit(-1) != want || from != filepath.Join(root, "memory.max") {
		t.Errorf("soft limit %d from %q, runtime %d; want %d", got, from, debug.SetMemoryLimit(-1), want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "50MiB")
	if got, _ := setMemoryLimit(root); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set, yet the limit was changed to %d", got)
	}
}
