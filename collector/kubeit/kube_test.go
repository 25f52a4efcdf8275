package kubeit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/policy"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// Verifies the metrics.k8s.io source end to end, as user elmascale with
// only the shipped RBAC: KWOK reports the CPU and memory set by pod
// annotations, metrics-server serves them, and the collector turns them
// into the HPA calculator's pod samples (usage and requests in millicores
// and bytes, readiness, start and sample times) with one request per tick
// (pod metrics; workloads and pods come from informers), on which a
// decision scales the hot Deployment up.
func TestRealClusterPodSamples(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	// 60m of the 100m request: 60% against a 50% target. Memory 32Mi of 64Mi.
	d := kubetest.Deployment(ns, "worker", 2, nil)
	d.Spec.Template.Annotations = map[string]string{
		testcluster.AnnotationUsageCPU:    "60m",
		testcluster.AnnotationUsageMemory: "32Mi",
	}
	kubetest.CreateDeployments(t, admin, d)
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 90*time.Second)

	cfg, err := config.Parse([]byte(fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
services:
  worker:
    minReplicas: 1
    maxReplicas: 6
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 50}
      - name: memory
        utilization: {resource: memory, targetPercent: 80}
  absent:
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 50}
`, ns)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	col := kubetest.Collector(t, c, collector.Options{Registerer: reg})

	// metrics-server derives CPU from two cumulative samples 10 s apart;
	// allow 10% around the annotated 60m for a window that straddles start.
	var cpu, mem policy.Observation
	kubetest.WaitFor(t, 120*time.Second, "both pods' samples near 60m CPU and at 32Mi", func() error {
		sigs, err := col.Collect(context.Background(), cfg, time.Now())
		if err != nil {
			return err
		}
		cpu, mem = sigs["worker"]["cpu"], sigs["worker"]["memory"]
		if cpu.Status != policy.StatusOK || len(cpu.Pods) != 2 {
			return fmt.Errorf("cpu %s (%s), %d pods", cpu.Status, cpu.Error, len(cpu.Pods))
		}
		for _, p := range cpu.Pods {
			if !p.HasMetric || p.Usage < 54 || p.Usage > 66 {
				return fmt.Errorf("pod %s: has metric %v, usage %dm", p.Name, p.HasMetric, p.Usage)
			}
		}
		return nil
	})
	for i, p := range cpu.Pods {
		if p.Phase != "Running" || !p.Ready || !p.ReadyKnown || p.Deleting {
			t.Errorf("pod %s: phase %s ready %v/%v deleting %v", p.Name, p.Phase, p.Ready, p.ReadyKnown, p.Deleting)
		}
		if p.StartTime.IsZero() || p.ReadyTransition.Before(p.StartTime) {
			t.Errorf("pod %s: start %v, ready since %v", p.Name, p.StartTime, p.ReadyTransition)
		}
		if p.MetricTime.IsZero() || p.MetricWindow <= 0 || p.MetricTime.Before(cpu.Time) {
			t.Errorf("pod %s: sample at %v over %v; observation time %v should be the oldest sample", p.Name, p.MetricTime, p.MetricWindow, cpu.Time)
		}
		if p.Request != 100 {
			t.Errorf("pod %s: cpu request %dm, want 100m", p.Name, p.Request)
		}
		m := mem.Pods[i]
		if m.Usage != 32<<20 || m.Request != 64<<20 {
			t.Errorf("pod %s: memory %d of %d bytes, want %d of %d", m.Name, m.Usage, m.Request, 32<<20, 64<<20)
		}
	}
	t.Logf("pods %s: %dm and %dm of 100m, window %s", cpu.Pods[0].Name, cpu.Pods[0].Usage, cpu.Pods[1].Usage, cpu.Pods[0].MetricWindow)

	before := kubeQueries(t, reg)
	now := time.Now()
	sigs, err := col.Collect(context.Background(), cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := kubeQueries(t, reg) - before; n != 1 {
		t.Errorf("%v Kubernetes requests in one tick, want 1 (pod metrics)", n)
	}
	if a := sigs["absent"]["cpu"]; a.Status != policy.StatusMissing {
		t.Errorf("absent service: %+v, want missing", a)
	}
	snap := policy.Snapshot{Time: now, Services: map[string]policy.ServiceObservation{
		"worker": {Found: true, CurrentReplicas: 2, ReadyReplicas: 2, Signals: sigs["worker"]},
	}}
	spec := cfg.Policy
	spec.Services = spec.Services[1:] // worker only; absent sorts first
	plan, _ := policy.Decide(spec, snap, policy.State{}, now)
	if dec, _ := plan.Decision("worker"); dec.Desired != 3 {
		t.Errorf("worker at 60%% of request against 50%%: desired %d (%s), want 3", dec.Desired, dec.Reason)
	}
}

// kubeQueries reads the collector's request counter for the Kubernetes
// source from its registry.
func kubeQueries(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "elmascale_source_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "source" && lp.GetValue() == collector.SourceKubernetes {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no elmascale_source_queries_total{source=kubernetes}")
	return 0
}
