package kubeit

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/policy"
)

// Verifies a pods signal (HPA's Pods metric) end to end: a real Prometheus
// scrapes per-pod series for two of the three pods of a real Deployment
// (the third not scraped yet, as right after a rollout) plus a series of a
// pod that is not the workload's; the collector joins them with the pods
// as user elmascale lists them, and the decision follows HPA: the pod with
// no sample counts as 0 on a scale-up, so 100+100+0 rps against 50 per pod
// asks for 4 replicas, not the 6 the two measured pods alone would give.
func TestRealClusterPodsSignal(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "api", 3, nil))
	kubetest.WaitReplicas(t, admin, ns, "api", 3, 90*time.Second)
	pods, err := admin.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("pods: %v (%d)", err, len(pods.Items))
	}
	names := make([]string, 0, 3)
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	if len(names) != 3 {
		t.Fatalf("running pods %v", names)
	}

	reg := prometheus.NewRegistry()
	rps := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "api_requests_per_second"}, []string{"pod"})
	reg.MustRegister(rps)
	rps.WithLabelValues(names[0]).Set(100)
	rps.WithLabelValues(names[1]).Set(100)
	rps.WithLabelValues("someone-elses-pod").Set(5000)
	prom := promtest.Start(t, promtest.Target{Addr: promtest.ServeRegistry(t, reg)})

	cfg, err := config.Parse([]byte(fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
metrics:
  rps: {prometheus: {query: "sum by (pod) (api_requests_per_second)", keyLabel: pod}}
services:
  api:
    minReplicas: 1
    maxReplicas: 10
    signals:
      - name: rps
        pods: {metric: rps, targetPerPod: 50}
`, ns)))
	if err != nil {
		t.Fatal(err)
	}
	col := kubetest.Collector(t, c, collector.Options{PrometheusURL: prom.URL})
	now := time.Now()
	sigs, err := col.Collect(context.Background(), cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	obs := sigs["api"]["rps"]
	if obs.Status != policy.StatusOK || len(obs.Pods) != 3 {
		t.Fatalf("observation %+v, want ok with the workload's 3 pods", obs)
	}
	measured := map[string]float64{}
	for _, p := range obs.Pods {
		if p.HasMetric {
			measured[p.Name] = p.Value
		}
		if p.Usage != 0 || p.Request != 0 {
			t.Errorf("pod %s carries metrics.k8s.io usage %d / request %d into a pods signal", p.Name, p.Usage, p.Request)
		}
	}
	if len(measured) != 2 || measured[names[0]] != 100 || measured[names[1]] != 100 {
		t.Errorf("measured pods %v, want %s and %s at 100", measured, names[0], names[1])
	}
	snap := policy.Snapshot{Time: now, Services: map[string]policy.ServiceObservation{
		"api": {Found: true, CurrentReplicas: 3, ReadyReplicas: 3, Signals: sigs["api"]},
	}}
	plan, _ := policy.Decide(cfg.Policy, snap, policy.State{}, now)
	if d, _ := plan.Decision("api"); d.Desired != 4 {
		t.Errorf("desired %d (%s), want 4: the unscraped pod counts as 0 on a scale-up", d.Desired, d.Reason)
	}
}
