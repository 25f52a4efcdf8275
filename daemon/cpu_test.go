package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/record"
)

// Verifies CPU-utilization scaling end to end: KWOK reports the pod CPU
// set by annotation, metrics-server serves it as metrics.k8s.io, the
// collector reads it as user elmascale, and the daemon holds the
// Deployment while usage is at target and scales it up once the pods run
// hot.
func TestCPUUtilizationEndToEnd(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	d := kubetest.Deployment(ns, "web", 2, nil)
	// 50m of a 100m request: 50%, exactly the target.
	d.Spec.Template.Annotations = map[string]string{testcluster.AnnotationUsageCPU: "50m"}
	kubetest.CreateDeployments(t, admin, d)
	kubetest.WaitReplicas(t, admin, ns, "web", 2, 60*time.Second)

	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
interval: 2s
services:
  web:
    minReplicas: 1
    maxReplicas: 6
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 50}
`, ns))
	reg := prometheus.NewRegistry()
	col := kubetest.Collector(t, c, collector.Options{Registerer: reg})
	dm := startDaemon(t, c, "cpu", path, func(o *daemon.Options) { o.Collector, o.Registry = col, reg })

	// First PodMetrics take 30-40 s after the pods start.
	start := time.Now()
	kubetest.WaitFor(t, 90*time.Second, "a usable CPU signal at target", func() error {
		r := latest(t, dm, "web")
		if len(r.Signals) == 0 || r.Signals[0].Status != policy.StatusOK {
			return fmt.Errorf("decision %+v", r.Decision)
		}
		if r.Desired != 2 {
			return fmt.Errorf("desired %d at target usage", r.Desired)
		}
		return nil
	})
	t.Logf("CPU signal usable %s after the daemon started", time.Since(start).Round(time.Second))

	pods, err := admin.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + testcluster.AnnotationUsageCPU + `":"150m"}}}`)
	for _, p := range pods.Items {
		if _, err := admin.CoreV1().Pods(ns).Patch(context.Background(), p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hot := time.Now()
	// 150% against a 50% target asks for 3x the replicas: 6, the maximum.
	kubetest.WaitReplicas(t, admin, ns, "web", 6, 90*time.Second)
	t.Logf("scaled 2 → 6 Ready pods %s after the pods ran hot", time.Since(hot).Round(time.Second))
	kubetest.WaitEvent(t, admin, ns, "web", "Normal ScaledUp", "replicas 2 → 6")
}

// latest returns the service's newest decision from /api/v1/decisions.
func latest(t *testing.T, d *runningDaemon, service string) record.DecisionRecord {
	t.Helper()
	var body struct {
		Decisions []record.DecisionRecord `json:"decisions"`
	}
	_, raw := get(t, "http://"+d.metrics+"/api/v1/decisions?service="+service)
	if err := json.Unmarshal([]byte(raw), &body); err != nil || len(body.Decisions) == 0 {
		return record.DecisionRecord{}
	}
	return body.Decisions[len(body.Decisions)-1]
}
