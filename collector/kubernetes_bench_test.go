package collector

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// BenchmarkKubernetesCollect1000 measures one tick of the Kubernetes
// source for 1,000 services with a CPU utilization signal each, two pods a
// service, every pod with a metrics.k8s.io sample: what a tick allocates
// (-benchmem). The API server is client-go's fake clientset, whose answers
// are copies of its objects as a decoded answer would be.
func BenchmarkKubernetesCollect1000(b *testing.B) {
	const n = 1000
	var objs []runtime.Object
	var samples []metricsv1beta1.PodMetrics
	var cfg strings.Builder
	cfg.WriteString("apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: elma365\nservices:\n")
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%04d", i)
		sel := map[string]string{"app": name}
		objs = append(objs, deployment(name, sel))
		for j := 0; j < 2; j++ {
			p := pod(fmt.Sprintf("%s-%d", name, j), sel, "500m", "1Gi")
			p.Labels["pod-template-hash"] = "5d8f7c9b6"
			p.Annotations = map[string]string{"linkerd.io/inject": "enabled", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
			objs = append(objs, p)
			samples = append(samples, podMetric(p.Name, "300m", "512Mi"))
		}
		fmt.Fprintf(&cfg, "  %s:\n    signals:\n      - name: cpu\n        utilization: {resource: cpu, targetPercent: 75}\n", name)
	}
	objs = append(objs, &appsv1.StatefulSet{})
	c, _ := newCollector(b, Options{Kubernetes: fake.NewSimpleClientset(objs...), PodMetrics: fakeMetrics(samples...)})
	conf := parseConfig(b, cfg.String())
	defer c.Close()
	if got := collect(b, c, conf, anyTime)["svc-0999"]["cpu"]; len(got.Pods) != 2 || !got.Pods[0].HasMetric {
		b.Fatalf("svc-0999 cpu %+v", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		collect(b, c, conf, anyTime)
	}
}
