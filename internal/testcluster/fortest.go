package testcluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared is the one cluster of a test binary, started by the first ForTest.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// ForTest returns the test binary's shared cluster (with metrics-server),
// starting it on first use. When the cluster cannot start, for instance
// because the binaries were never built, the test fails with the reason and
// the build command; it never skips. When a test using the cluster fails,
// the tail of every component log is added to its output.
//
// Tests must not stop the shared cluster or its API server; use Start for a
// private cluster instead. Call Main from TestMain so the cluster is
// stopped when the tests end (the kernel kills it otherwise, via
// Pdeathsig, but its temporary directory stays behind).
func ForTest(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.cluster, shared.err = Start(context.Background(), Options{
			MetricsServer: true,
			Logf:          func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
		})
	})
	if shared.err != nil {
		t.Fatalf("%v", shared.err)
	}
	c := shared.cluster
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("test cluster logs (dir %s):\n%s", c.Dir, c.LogTails(40))
		}
	})
	return c
}

// Main runs the tests and then stops the shared cluster, if one was started.
// Use it as the whole body of TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
