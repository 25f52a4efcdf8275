package collector

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"

	"github.com/elmascale/elmascale/policy"
)

const kubeYAML = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  worker:
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 75}
      - name: memory
        utilization: {resource: memory, targetPercent: 80}
  cache:
    target: {kind: StatefulSet, name: cache-sts}
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 70}
  ghost:
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 70}
`

func deployment(name string, sel map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "elma365"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}},
	}
}

type podOpt func(*corev1.Pod)

func pod(name string, lbl map[string]string, cpuReq, memReq string, opts ...podOpt) *corev1.Pod {
	req := corev1.ResourceList{}
	if cpuReq != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpuReq)
	}
	if memReq != "" {
		req[corev1.ResourceMemory] = resource.MustParse(memReq)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "elma365", Labels: lbl},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Resources: corev1.ResourceRequirements{Requests: req}},
		}},
		Status: corev1.PodStatus{
			Phase:     corev1.PodRunning,
			StartTime: &metav1.Time{Time: anyTime.Add(-time.Hour)},
			Conditions: []corev1.PodCondition{{
				Type: corev1.PodReady, Status: corev1.ConditionTrue,
				LastTransitionTime: metav1.Time{Time: anyTime.Add(-50 * time.Minute)},
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func podMetric(name, cpu, mem string) metricsv1beta1.PodMetrics {
	return metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "elma365"},
		Timestamp:  metav1.Time{Time: anyTime.Add(-20 * time.Second)},
		Window:     metav1.Duration{Duration: 15 * time.Second},
		Containers: []metricsv1beta1.ContainerMetrics{{
			Name:  "app",
			Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		}},
	}
}

// fakeMetrics serves a PodMetricsList. The generated fake's object tracker
// files PodMetrics under a resource name its List does not use, so a
// reactor answers instead.
func fakeMetrics(items ...metricsv1beta1.PodMetrics) *metricsfake.Clientset {
	mc := metricsfake.NewSimpleClientset()
	mc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &metricsv1beta1.PodMetricsList{Items: items}, nil
	})
	return mc
}

// Verifies that pods are grouped by their workload's selector and turned
// into the HPA calculator's samples: usage in millicores and bytes,
// requests summed over containers, readiness, start and sample times; and
// that pods and workloads come from informers (one list and one watch
// each, whatever the number of ticks), pod metrics from one list a tick.
func TestKubernetesPodSamples(t *testing.T) {
	workerSel := map[string]string{"app": "worker"}
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: anyTime} }
	pending := func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = nil
		p.Status.StartTime = nil
	}
	sidecar := func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "proxy", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}})
	}
	core := fake.NewSimpleClientset(
		deployment("worker", workerSel),
		deployment("unrelated", map[string]string{"app": "other"}),
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "cache-sts", Namespace: "elma365"},
			Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cache"}}},
		},
		pod("worker-a", workerSel, "500m", "1Gi"),
		pod("worker-b", workerSel, "500m", "1Gi", sidecar),
		pod("worker-c", workerSel, "500m", "1Gi", deleting),
		pod("worker-d", workerSel, "500m", "1Gi", pending),
		pod("other-a", map[string]string{"app": "other"}, "1", "1Gi"),
		pod("cache-0", map[string]string{"app": "cache"}, "250m", "512Mi"),
		pod("elsewhere", workerSel, "1", "1Gi", func(p *corev1.Pod) { p.Namespace = "other" }),
	)
	mc := fakeMetrics(
		podMetric("worker-a", "300m", "512Mi"),
		podMetric("worker-b", "1200m", "256Mi"),
		podMetric("cache-0", "100m", "100Mi"),
	)
	cfg := parseConfig(t, kubeYAML)
	c, _ := newCollector(t, Options{Kubernetes: core, PodMetrics: mc})
	defer c.Close()
	collect(t, c, cfg, anyTime)
	sigs := collect(t, c, cfg, anyTime)

	started := anyTime.Add(-time.Hour)
	readySince := anyTime.Add(-50 * time.Minute)
	sampled := anyTime.Add(-20 * time.Second)
	running := func(name string, usage, request int64) policy.PodSample {
		return policy.PodSample{Name: name, Phase: "Running", Ready: true, ReadyKnown: true, ReadyTransition: readySince,
			StartTime: started, HasMetric: true, MetricTime: sampled, MetricWindow: 15 * time.Second, Usage: usage, Request: request}
	}
	wantCPU := policy.Observation{Status: policy.StatusOK, Time: sampled, Pods: []policy.PodSample{
		running("worker-a", 300, 500),
		// The sidecar's request counts, as HPA sums containers.
		running("worker-b", 1200, 600),
		{Name: "worker-c", Phase: "Running", Deleting: true, Ready: true, ReadyKnown: true, ReadyTransition: readySince, StartTime: started, Request: 500},
		{Name: "worker-d", Phase: "Pending", Request: 500},
	}}
	if diff := cmp.Diff(wantCPU, sigs["worker"]["cpu"]); diff != "" {
		t.Errorf("worker cpu (-want,+got):\n%s", diff)
	}
	// worker-b's sidecar has no memory request: the pod's request is then
	// unknown (0), which the policy reports as a missing request.
	mem := sigs["worker"]["memory"]
	if mem.Pods[0].Usage != 512<<20 || mem.Pods[0].Request != 1<<30 || mem.Pods[1].Request != 0 {
		t.Errorf("worker memory pods %+v", mem.Pods[:2])
	}
	if cache := sigs["cache"]["cpu"]; cache.Status != policy.StatusOK || len(cache.Pods) != 1 || cache.Pods[0].Usage != 100 || cache.Pods[0].Request != 250 {
		t.Errorf("cache (StatefulSet) cpu %+v", cache)
	}
	if g := sigs["ghost"]["cpu"]; g.Status != policy.StatusMissing || !strings.Contains(g.Error, `kubernetes: Deployment ghost not found in namespace "elma365"`) {
		t.Errorf("ghost %+v; want missing, workload not found", g)
	}
	var lists []string
	for _, a := range core.Actions() {
		lists = append(lists, a.GetVerb()+" "+a.GetResource().Resource)
	}
	want := []string{"list deployments", "list pods", "list statefulsets", "watch deployments", "watch pods", "watch statefulsets"}
	if diff := cmp.Diff(want, sorted(lists)); diff != "" {
		t.Errorf("API calls over two ticks (-want,+got):\n%s", diff)
	}
	var metricLists int
	for _, a := range mc.Actions() {
		if a.GetVerb() == "list" {
			metricLists++
		}
	}
	if metricLists != 2 {
		t.Errorf("%d metrics.k8s.io lists over two ticks, want 2", metricLists)
	}
}

// Verifies that the informers keep of a pod only what the samples read:
// labels and the PodReady condition stay, annotations, managed fields,
// other conditions and requests of other resources go; a container without
// a CPU request still reads as one without.
func TestSlimForCollector(t *testing.T) {
	p := pod("worker-a", map[string]string{"app": "worker"}, "", "1Gi")
	p.Annotations = map[string]string{"linkerd.io/inject": "enabled"}
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	p.Spec.Containers[0].Image = "elma365/worker:2025.6"
	p.Spec.Containers[0].Resources.Requests["ephemeral-storage"] = resource.MustParse("1Gi")
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue})
	got, err := slimForCollector(p.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	sp := got.(*corev1.Pod)
	if sp.Annotations != nil || sp.ManagedFields != nil || sp.Spec.Containers[0].Image != "" {
		t.Errorf("kept annotations %v, managed fields %v or image %q", sp.Annotations, sp.ManagedFields, sp.Spec.Containers[0].Image)
	}
	if len(sp.Status.Conditions) != 1 || sp.Status.Conditions[0].Type != corev1.PodReady {
		t.Errorf("conditions %+v, want PodReady only", sp.Status.Conditions)
	}
	if diff := cmp.Diff(podStateOf(p, nil), podStateOf(sp, nil), cmp.AllowUnexported(podState{})); diff != "" {
		t.Errorf("sample of the slim pod (-full,+slim):\n%s", diff)
	}
	if r := podRequest(sp, corev1.ResourceCPU); r != 0 {
		t.Errorf("cpu request %d of a container without one, want 0 (unknown)", r)
	}
	if _, ok := sp.Spec.Containers[0].Resources.Requests["ephemeral-storage"]; ok {
		t.Error("kept the ephemeral-storage request")
	}
}

// Verifies that a config whose pods signals read Prometheus does not ask
// metrics.k8s.io at all.
func TestKubernetesPodsSignalNeedsNoMetricsAPI(t *testing.T) {
	sel := map[string]string{"app": "worker"}
	core := fake.NewSimpleClientset(deployment("worker", sel), pod("worker-a", sel, "1", "1Gi"))
	mc := fakeMetrics()
	cfg := parseConfig(t, `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
metrics:
  inflight: {prometheus: {query: "sum by (pod) (inflight)", keyLabel: pod}}
services:
  worker:
    signals:
      - name: inflight
        pods: {metric: inflight, targetPerPod: 10}
`)
	c, _ := newCollector(t, Options{Kubernetes: core, PodMetrics: mc})
	defer c.Close()
	collect(t, c, cfg, anyTime)
	if n := len(mc.Actions()); n != 0 {
		t.Errorf("%d metrics.k8s.io requests, want none", n)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Verifies that a missing metrics API fails the utilization signals with a
// hint, and that the decision holds.
func TestKubernetesMetricsAPIMissing(t *testing.T) {
	core := fake.NewSimpleClientset(deployment("worker", map[string]string{"app": "worker"}), pod("worker-a", map[string]string{"app": "worker"}, "1", "1Gi"))
	mc := metricsfake.NewSimpleClientset()
	mc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}, "")
	})
	cfg := parseConfig(t, kubeYAML)
	c, _ := newCollector(t, Options{Kubernetes: core, PodMetrics: mc})
	sigs := collect(t, c, cfg, anyTime)
	got := sigs["worker"]["cpu"]
	if got.Status != policy.StatusFailed || !strings.Contains(got.Error, "kubernetes: list metrics.k8s.io pods") || !strings.Contains(got.Error, "is metrics-server installed?") {
		t.Errorf("got %+v", got)
	}
	assertHeld(t, cfg, sigs, 4, anyTime, "worker")
}

// Verifies that without any Kubernetes client the utilization signals are
// missing, and that New rejects half a client pair.
func TestKubernetesNotConfigured(t *testing.T) {
	cfg := parseConfig(t, kubeYAML)
	c, _ := newCollector(t, Options{})
	if got := collect(t, c, cfg, anyTime)["worker"]["cpu"]; got.Status != policy.StatusMissing || !strings.Contains(got.Error, "no client configured") {
		t.Errorf("got %+v", got)
	}
	if _, err := New(Options{Kubernetes: fake.NewSimpleClientset()}); err == nil {
		t.Error("New accepted a Kubernetes client without a metrics client")
	}
}

// Verifies that pods the collector may not list fail the utilization
// signals with the API server's answer at the first tick, rather than
// after the query timeout while the informer retries.
func TestKubernetesPodsForbidden(t *testing.T) {
	core := fake.NewSimpleClientset(deployment("worker", map[string]string{"app": "worker"}))
	core.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
	})
	cfg := parseConfig(t, kubeYAML)
	c, _ := newCollector(t, Options{Kubernetes: core, PodMetrics: fakeMetrics(), QueryTimeout: time.Minute})
	defer c.Close()
	start := time.Now()
	got := collect(t, c, cfg, anyTime)["worker"]["cpu"]
	if got.Status != policy.StatusFailed || !strings.Contains(got.Error, `pods in namespace "elma365": failed to list`) || !strings.Contains(got.Error, "forbidden") {
		t.Errorf("got %+v; want failed, naming the forbidden list", got)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the failure took %s, as long as the query timeout", d)
	}
}

// Verifies that a synced cache is not read for long once its watches and
// lists fail: within cacheStaleAfter of the API server going away the
// signals still read the cached pods (a reconnect is not an outage); past
// it the utilization signal fails with how long the cache has not been
// refreshed, and the decision holds; once a watch opens again the cache is
// read again.
func TestKubernetesCacheStaleDuringOutage(t *testing.T) {
	sel := map[string]string{"app": "worker"}
	core := fake.NewSimpleClientset(deployment("worker", sel), pod("worker-a", sel, "1", "1Gi"))
	var (
		mu       sync.Mutex
		outage   bool
		watchers []*watch.FakeWatcher
	)
	core.PrependWatchReactor("*", func(k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		defer mu.Unlock()
		if outage {
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		w := watch.NewFake()
		watchers = append(watchers, w)
		return true, w, nil
	})
	core.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if outage {
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		return false, nil, nil
	})
	cfg := parseConfig(t, kubeYAML)
	c, _ := newCollector(t, Options{Kubernetes: core, PodMetrics: fakeMetrics(podMetric("worker-a", "500m", "512Mi")),
		Breaker: BreakerSettings{OpenFor: 100 * time.Millisecond}})
	defer c.Close()
	var clockMu sync.Mutex
	now := anyTime
	c.kube.cacheFor("elma365").now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	cpu := func() policy.Observation { return collect(t, c, cfg, anyTime)["worker"]["cpu"] }

	if got := cpu(); got.Status != policy.StatusOK {
		t.Fatalf("before the outage: %+v", got)
	}
	mu.Lock()
	outage = true
	for _, w := range watchers {
		w.Stop() // the connections drop; the reflectors watch again and fail
	}
	watchers = nil
	mu.Unlock()
	waitUntil(t, "a failed watch recorded", func() bool {
		k := c.kube.cacheFor("elma365")
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.failing) > 0
	})
	advance(cacheStaleAfter / 2)
	if got := cpu(); got.Status != policy.StatusOK {
		t.Errorf("%s into the outage: %+v, want the cached pods still read", cacheStaleAfter/2, got)
	}
	advance(cacheStaleAfter)
	got := cpu()
	if got.Status != policy.StatusFailed || !strings.Contains(got.Error, "last refreshed") || !strings.Contains(got.Error, "connection refused") {
		t.Errorf("past %s of outage: %+v, want failed with the cache's age", cacheStaleAfter, got)
	}
	sigs := collect(t, c, cfg, anyTime)
	assertHeld(t, cfg, sigs, 4, anyTime, "worker")
	mu.Lock()
	outage = false
	mu.Unlock()
	waitUntil(t, "the cache read again after the API server came back", func() bool { return cpu().Status == policy.StatusOK })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
