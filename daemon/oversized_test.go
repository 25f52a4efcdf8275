package daemon_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/record"
)

// shippedMemoryLimit is the container memory limit of the shipped
// Deployment, in bytes.
func shippedMemoryLimit(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kubetest.RepoRoot(), "deploy", "base", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	q, ok := d.Spec.Template.Spec.Containers[0].Resources.Limits["memory"]
	if !ok {
		t.Fatal("the shipped Deployment sets no memory limit")
	}
	return q.Value()
}

// Verifies that one unaggregated query against a big Prometheus cannot
// sink the pod: the real daemon, run as the image builds it with the Go
// memory limit it would take from the shipped container limit, gets a
// 1.2-million-series answer (about 100 MB) every tick from an HTTP server
// posing as the Prometheus API. The signal fails with an error naming the
// query and the bound, and the process's peak RSS stays under the
// shipped limit.
func TestOversizedPrometheusAnswerBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	limit := shippedMemoryLimit(t)
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 2, nil))
	bin := buildElmascale(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	prom := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bw := bufio.NewWriterSize(w, 64<<10)
		ts := float64(time.Now().UnixMilli()) / 1000
		bw.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
		for i := 0; i < 1_200_000; i++ {
			if i > 0 {
				bw.WriteString(",")
			}
			if _, err := fmt.Fprintf(bw, `{"metric":{"__name__":"elma365_load","service":"worker","pod":"worker-%d"},"value":[%.3f,"1"]}`, i, ts); err != nil {
				return // the client stopped reading
			}
		}
		bw.WriteString(`]}}`)
		_ = bw.Flush()
	})}
	go func() { _ = prom.Serve(ln) }()
	t.Cleanup(func() { _ = prom.Close() })

	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
interval: 1s
metrics:
  load: {prometheus: {query: elma365_load}}
services:
  worker: {signals: [{name: load, perReplica: {metric: load, targetPerReplica: 10}}]}
`, ns))
	metricsAddr, healthAddr := freeAddr(t), freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "--kubeconfig", c.KubeconfigElmascale, "--config", path, "--mode", "dry-run",
		"--prometheus", "http://"+ln.Addr().String(),
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", healthAddr, "--log-format", "json")
	// In the pod the daemon takes this from its cgroup (memory.max).
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%d", limit*3/4))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", tail(logs.String(), 4000))
		}
	})

	var last policy.SignalResult
	kubetest.WaitFor(t, 90*time.Second, "5 ticks with the oversized answer", func() error {
		code, body := getNoFail("http://" + metricsAddr + "/metrics")
		if code != 200 {
			return fmt.Errorf("metrics %d", code)
		}
		if ticks := sample(body, "elmascale_loop_ticks_total"); ticks < 5 {
			return fmt.Errorf("%v ticks", ticks)
		}
		_, body = getNoFail("http://" + metricsAddr + "/api/v1/decisions?service=worker")
		var resp struct {
			Decisions []record.DecisionRecord `json:"decisions"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Decisions) == 0 {
			return fmt.Errorf("decisions: %v %.200s", err, body)
		}
		last = resp.Decisions[len(resp.Decisions)-1].Signals[0]
		return nil
	})
	hwm := procStatus(t, cmd.Process.Pid, "VmHWM")
	_, mb := getNoFail("http://" + metricsAddr + "/metrics")
	t.Logf("peak RSS %.1f MiB under a %d MiB limit (now: anonymous %.1f, file-backed %.1f MiB; Go runtime total %.1f MiB); signal %s: %s",
		hwm, limit>>20, procStatus(t, cmd.Process.Pid, "RssAnon"), procStatus(t, cmd.Process.Pid, "RssFile"),
		sample(mb, "go_memstats_sys_bytes")/(1<<20), last.Status, last.Note)
	if last.Status != policy.StatusFailed || !strings.Contains(last.Note, "query load: answer too large") {
		t.Errorf("signal %s (%s), want failed naming the query and the bound", last.Status, last.Note)
	}
	if hwm*(1<<20) >= float64(limit) {
		t.Errorf("peak RSS %.1f MiB, over the shipped limit of %d MiB: the pod would be OOM-killed", hwm, limit>>20)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
