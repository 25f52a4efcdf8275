package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/elmascale/elmascale/internal/testcluster"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeKubeconfig writes a kubeconfig for an API server at url.
func writeKubeconfig(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: url, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Verifies that run against an API server that refuses connections, or
// one that accepts them and never answers, says so within seconds and
// exits 1, instead of waiting for informer caches that never sync.
func TestRunReportsADeadAPIServerEarly(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, say nothing
		}
	}()

	for _, tc := range []struct{ name, addr, want string }{
		{"refused", refusedAddr, "connection refused"},
		{"silent", silent.Addr().String(), "no answer within 5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := writeKubeconfig(t, "https://"+tc.addr)
			start := time.Now()
			code, _, errOut := run(t, "run", "--kubeconfig", kc, "--log-format", "json",
				"--metrics-bind-address", "", "--health-probe-bind-address", "")
			took := time.Since(start)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range []string{"the Kubernetes API server does not answer", tc.addr, tc.want} {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if took > apiServerCheckTimeout+3*time.Second {
				t.Errorf("took %s to report a dead API server, want about %s at most", took, apiServerCheckTimeout)
			}
		})
	}
}

// Verifies against a real API server that run with a kubeconfig and no
// --config runs the embedded ELMA365 preset, as validate and recommend do,
// and logs which config is in force and which API server answered.
func TestRunWithoutConfigUsesThePreset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(runCtx, []string{"run", "--kubeconfig", c.KubeconfigAdmin, "--log-format", "json",
			"--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0", "--interval", "1s"}, &stdout, &stderr)
	}()
	want := []string{"connected to the Kubernetes API server", "config in force: the embedded ELMA365 preset", `"msg":"elmascale running"`, `"namespace":"elma365"`}
	deadline := time.After(60 * time.Second)
	for {
		all := true
		for _, w := range want {
			all = all && strings.Contains(stderr.String(), w)
		}
		if all {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("run ended with exit %d before running the preset:\n%s", code, stderr.String())
		case <-deadline:
			t.Fatalf("run never reported the preset in force:\n%s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after a clean stop:\n%s", code, stderr.String())
	}
}
