package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Verifies the run and import flag checks, and that run without any
// cluster says so instead of pretending.
func TestRunAndImportFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: x\nservices: {a: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cases := []struct {
		name      string
		args      []string
		code      int
		stderrHas string
	}{
		{"run names a kubeconfig it cannot read", []string{"run", "--kubeconfig", "/nonexistent/kubeconfig", "--log-format", "console"}, 1, "/nonexistent/kubeconfig"},
		{"the demo rejects an unknown scenario", []string{"run", "--demo-scenario", "nope"}, 2, `invalid argument "nope" for "--demo-scenario" flag: must be `},
		{"run rejects a mode", []string{"run", "--config", cfg, "--mode", "yolo"}, 2, `invalid argument "yolo" for "--mode" flag: must be apply or dry-run`},
		{"run without a cluster", []string{"run", "--config", cfg, "--log-format", "console"}, 1, "no Kubernetes cluster"},
		{"import needs a namespace", []string{"import"}, 2, "--namespace is required"},
		{"import without a cluster", []string{"import", "--namespace", "x"}, 1, "no Kubernetes cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderrHas) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.stderrHas)
			}
		})
	}
}

// Verifies `elmascale run` with no cluster and no config drives the
// embedded simulated ELMA365 cluster and prints its decisions.
func TestRunWithoutClusterDrivesTheDemo(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	code, out, errOut := run(t, "run", "--demo-scenario", "script-storm", "--demo-speed", "1000000",
		"--demo-duration", "30m", "--metrics-bind-address", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"embedded simulated ELMA365 cluster", "SERVICE", "worker", "scale up", "scale actions, peak"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// Verifies the demo serves the probes on --health-probe-bind-address and
// says where, as the daemon does.
func TestDemoServesProbesOnTheFlag(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"run", "--demo-scenario", "script-storm", "--metrics-bind-address", "", "--health-probe-bind-address", addr}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready probe on %s: %v\n%s%s", addr, err, stdout.String(), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(stdout.String(), "serving /healthz and /readyz on http://"+addr) {
		t.Errorf("the probe address is not printed:\n%s", stdout.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}
