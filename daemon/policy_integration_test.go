package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/scaler"
)

// policySpec is a ScalingPolicy: worker scaled on jobs in flight from
// Prometheus (10 a replica), api on bounds alone.
func policySpec(name string, maxReplicas int, extra string) string {
	return fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: %s}
spec:
  interval: 1s
  defaults: {minReplicas: 1, maxReplicas: %d}
  metrics:
    jobs: {prometheus: {query: 'sum by (service) (jobs_in_flight)'}}
  services:
    worker:
      signals:
      - name: jobs
        perReplica: {metric: jobs, targetPerReplica: 10}
    api: {}
%s`, name, maxReplicas, extra)
}

type policyClient struct {
	t  *testing.T
	ri dynamic.ResourceInterface
}

func (p policyClient) apply(manifest string) {
	p.t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		p.t.Fatal(err)
	}
	ctx := context.Background()
	cur, err := p.ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil {
		if _, err := p.ri.Create(ctx, &u, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
			p.t.Fatal(err)
		}
		return
	}
	u.SetResourceVersion(cur.GetResourceVersion())
	if _, err := p.ri.Update(ctx, &u, metav1.UpdateOptions{FieldValidation: "Strict"}); err != nil {
		p.t.Fatal(err)
	}
}

func (p policyClient) get(name string) (*unstructured.Unstructured, *v1alpha1.ScalingPolicy) {
	p.t.Helper()
	u, err := p.ri.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	sp, err := v1alpha1.FromUnstructured(u)
	if err != nil {
		p.t.Fatal(err)
	}
	return u, sp
}

// waitStatus waits until the policy's status satisfies cond (nil when it
// does, else what is still wrong).
func (p policyClient) waitStatus(name, what string, cond func(*v1alpha1.ScalingPolicy) error) *v1alpha1.ScalingPolicy {
	p.t.Helper()
	var sp *v1alpha1.ScalingPolicy
	kubetest.WaitFor(p.t, 60*time.Second, what, func() error {
		_, sp = p.get(name)
		return cond(sp)
	})
	return sp
}

func condition(sp *v1alpha1.ScalingPolicy, typ string) metav1.Condition {
	for _, c := range sp.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

func service(sp *v1alpha1.ScalingPolicy, name string) v1alpha1.ServiceStatus {
	for _, s := range sp.Status.Services {
		if s.Name == name {
			return s
		}
	}
	return v1alpha1.ServiceStatus{}
}

func want(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// Verifies on the real API server, with a real Prometheus, that the daemon
// takes its config from a ScalingPolicy: the status shows every service
// with its recommendation and reason and the conditions; SourcesHealthy
// flips when Prometheus stops and back when it starts; a new generation
// is taken at once; a generation the API server accepts but elmascale
// cannot compile keeps the last good config, says so in Ready and Degraded
// and in a Warning Event; and nothing is scaled in dry-run.
func TestScalingPolicyDrivesTheDaemon(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil), kubetest.Deployment(ns, "api", 1, nil))

	reg := prometheus.NewRegistry()
	jobs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jobs_in_flight"}, []string{"service"})
	reg.MustRegister(jobs)
	jobs.WithLabelValues("worker").Set(40)
	prom := promtest.Start(t, promtest.Target{Job: "elma365", Addr: promtest.ServeRegistry(t, reg)})

	pc := policyClient{t: t, ri: dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)}
	pc.apply(policySpec("shop", 6, ""))

	col := kubetest.Collector(t, c, collector.Options{PrometheusURL: prom.URL, QueryTimeout: time.Second,
		Breaker: collector.BreakerSettings{FailureThreshold: 1, OpenFor: time.Second}})
	startDaemon(t, c, "policy", "", func(o *daemon.Options) {
		o.Policy = ns + "/shop"
		o.Mode = scaler.ModeDryRun
		o.Collector = col
	})

	sp := pc.waitStatus("shop", "the status to show both services and a healthy source", func(sp *v1alpha1.ScalingPolicy) error {
		w := service(sp, "worker")
		return want(sp.Status.ObservedGeneration == 1 && len(sp.Status.Services) == 2 && w.Recommended != nil && *w.Recommended == 4 &&
			condition(sp, v1alpha1.ConditionSourcesHealthy).Status == metav1.ConditionTrue,
			"status %+v", sp.Status)
	})
	if w := service(sp, "worker"); w.Desired != nil || w.Current != 1 || w.Reason == "" || w.LastChangeTime == nil {
		t.Errorf("worker status %+v: want current 1, a recommendation (not a desired count), a reason and a change time", w)
	}
	if sp.Status.Mode != "dry-run" || sp.Status.ServiceCount != 2 || !strings.Contains(sp.Status.LastAction, "worker 1→4") || sp.Status.Bottleneck != "worker" {
		t.Errorf("status mode %q, services %d, last action %q, bottleneck %q", sp.Status.Mode, sp.Status.ServiceCount, sp.Status.LastAction, sp.Status.Bottleneck)
	}
	if w := service(sp, "worker"); !w.Bottleneck {
		t.Errorf("worker, four times over its jobs target, is not marked a bottleneck: %+v", w)
	}
	for typ, st := range map[string]metav1.ConditionStatus{v1alpha1.ConditionReady: metav1.ConditionTrue, v1alpha1.ConditionDryRun: metav1.ConditionTrue, v1alpha1.ConditionDegraded: metav1.ConditionFalse} {
		if got := condition(sp, typ); got.Status != st {
			t.Errorf("condition %s = %+v, want %s", typ, got, st)
		}
	}
	if spec, _ := kubetest.Replicas(t, admin, ns, "worker"); spec != 1 {
		t.Errorf("dry-run scaled worker to %d", spec)
	}

	prom.Stop()
	pc.waitStatus("shop", "SourcesHealthy False with Prometheus stopped", func(sp *v1alpha1.ScalingPolicy) error {
		c := condition(sp, v1alpha1.ConditionSourcesHealthy)
		return want(c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "worker/jobs"), "SourcesHealthy %+v", c)
	})
	if w := service(pc.waitStatus("shop", "a status", func(*v1alpha1.ScalingPolicy) error { return nil }), "worker"); w.Recommended == nil || *w.Recommended < 1 {
		t.Errorf("with its signal failed, worker's recommendation is %v; a failed signal never scales down", w.Recommended)
	}
	prom.Restart()
	pc.waitStatus("shop", "SourcesHealthy True again with Prometheus back", func(sp *v1alpha1.ScalingPolicy) error {
		c := condition(sp, v1alpha1.ConditionSourcesHealthy)
		return want(c.Status == metav1.ConditionTrue, "SourcesHealthy %+v", c)
	})

	// A new generation is taken: maxReplicas 3 caps the worker.
	pc.apply(policySpec("shop", 3, ""))
	pc.waitStatus("shop", "generation 2 in force", func(sp *v1alpha1.ScalingPolicy) error {
		w := service(sp, "worker")
		return want(sp.Status.ObservedGeneration == 2 && w.Recommended != nil && *w.Recommended == 3 && w.LimitedBy == "max", "status %+v worker %+v", sp.Status, w)
	})

	// Accepted by the API server, refused by elmascale: dependsOn names no
	// service. Generation 2 stays in force.
	pc.apply(policySpec("shop", 5, "    batch: {dependsOn: [nosuch]}\n"))
	sp = pc.waitStatus("shop", "Ready False for generation 3", func(sp *v1alpha1.ScalingPolicy) error {
		r := condition(sp, v1alpha1.ConditionReady)
		return want(r.Status == metav1.ConditionFalse && r.Reason == "InvalidSpec" && r.ObservedGeneration == 3, "Ready %+v", r)
	})
	if r := condition(sp, v1alpha1.ConditionReady); !strings.Contains(r.Message, "nosuch") || !strings.Contains(r.Message, "generation 2 stays in force") {
		t.Errorf("Ready message %q: want the problem and what stays in force", r.Message)
	}
	if d := condition(sp, v1alpha1.ConditionDegraded); d.Status != metav1.ConditionTrue || d.Reason != "InvalidSpec" {
		t.Errorf("Degraded %+v, want True InvalidSpec", d)
	}
	if sp.Status.ObservedGeneration != 2 || sp.Status.ServiceCount != 2 {
		t.Errorf("observedGeneration %d, services %d: want generation 2's two services still in force", sp.Status.ObservedGeneration, sp.Status.ServiceCount)
	}
	kubetest.WaitEvent(t, admin, ns, "shop", daemon.EventPolicyInvalid, "nosuch")

	// Fixed: generation 4 is taken and Ready again.
	pc.apply(policySpec("shop", 5, "    batch: {}\n"))
	pc.waitStatus("shop", "generation 4 in force", func(sp *v1alpha1.ScalingPolicy) error {
		return want(sp.Status.ObservedGeneration == 4 && sp.Status.ServiceCount == 3 && condition(sp, v1alpha1.ConditionReady).Status == metav1.ConditionTrue,
			"status %+v", sp.Status)
	})
}

// Verifies that a second ScalingPolicy in another namespace, driven by its
// own daemon, is independent: each status holds its own services only, and
// a change to one leaves the other's generation alone.
func TestScalingPoliciesInTwoNamespacesAreIndependent(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	dyn := dynamic.NewForConfigOrDie(c.AdminConfig)
	var pcs []policyClient
	var nss []string
	for i, svc := range []string{"orders", "billing"} {
		ns := kubetest.Namespace(t, c)
		nss = append(nss, ns)
		kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, svc, 1, nil))
		pc := policyClient{t: t, ri: dyn.Resource(v1alpha1.GroupVersionResource).Namespace(ns)}
		pc.apply(fmt.Sprintf("apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p}\nspec:\n  interval: 1s\n  defaults: {minReplicas: %d, maxReplicas: 6}\n  services:\n    %s: {}\n", i+2, svc))
		pcs = append(pcs, pc)
		startDaemon(t, c, "ns"+svc, "", func(o *daemon.Options) { o.Policy = ns + "/p"; o.Mode = scaler.ModeApply })
	}
	for i, svc := range []string{"orders", "billing"} {
		pcs[i].waitStatus("p", svc+" alone in its policy's status", func(sp *v1alpha1.ScalingPolicy) error {
			return want(len(sp.Status.Services) == 1 && sp.Status.Services[0].Name == svc && sp.Status.Mode == "apply" &&
				sp.Status.Services[0].Desired != nil && *sp.Status.Services[0].Desired == int32(i+2), "status %+v", sp.Status)
		})
		kubetest.WaitReplicas(t, admin, nss[i], svc, int32(i+2), 30*time.Second)
	}
	pcs[0].apply("apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p}\nspec:\n  interval: 1s\n  defaults: {minReplicas: 3, maxReplicas: 6}\n  services:\n    orders: {}\n")
	pcs[0].waitStatus("p", "orders' policy at generation 2", func(sp *v1alpha1.ScalingPolicy) error {
		return want(sp.Status.ObservedGeneration == 2, "observedGeneration %d", sp.Status.ObservedGeneration)
	})
	kubetest.WaitReplicas(t, admin, nss[0], "orders", 3, 30*time.Second)
	if _, sp := pcs[1].get("p"); sp.Status.ObservedGeneration != 1 || sp.Generation != 1 {
		t.Errorf("billing's policy moved: generation %d, observed %d", sp.Generation, sp.Status.ObservedGeneration)
	}
	if spec, _ := kubetest.Replicas(t, admin, nss[1], "billing"); spec != 3 {
		t.Errorf("billing at %d replicas, want its own minimum 3", spec)
	}
}

// Verifies what an administrator sees once the shipped ELMA365 policy is
// applied: kubectl apply of deploy/components/scalingpolicy/elma365.yaml
// (moved to the test's namespace) is accepted, and in dry-run the Table
// kubectl get prints shows the mode, the services and the last action,
// while the status kubectl describe prints has every service with its
// recommendation and reason (no Prometheus here: every signal is missing,
// so the bounds alone move replicas and single-instance services stay at
// one).
func TestShippedPolicyInKubectlGet(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	data, err := os.ReadFile(filepath.Join(kubetest.RepoRoot(), "deploy", "components", "scalingpolicy", "elma365.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	_ = unstructured.SetNestedField(u.Object, "3s", "spec", "interval") // above the burst path's 2s
	_ = unstructured.SetNestedField(u.Object, ns, "spec", "mesh", "linkerd", "namespace")
	services, _, _ := unstructured.NestedMap(u.Object, "spec", "services")
	var deps []*appsv1.Deployment
	for name, s := range services {
		target, _, _ := unstructured.NestedString(s.(map[string]any), "target", "name")
		kind, _, _ := unstructured.NestedString(s.(map[string]any), "target", "kind")
		if kind == "StatefulSet" {
			continue // held as not found; the rest are enough
		}
		deps = append(deps, kubetest.Deployment(ns, cmpOr(target, name), 1, nil))
	}
	kubetest.CreateDeployments(t, admin, deps...)
	ri := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	if _, err := ri.Create(context.Background(), &u, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		t.Fatalf("kubectl apply of the shipped policy refused: %v", err)
	}
	startDaemon(t, c, "shipped", "", func(o *daemon.Options) { o.Policy = ns + "/elma365"; o.Mode = scaler.ModeDryRun })

	pc := policyClient{t: t, ri: ri}
	sp := pc.waitStatus("elma365", "every service in the status", func(sp *v1alpha1.ScalingPolicy) error {
		return want(len(sp.Status.Services) == len(services) && sp.Status.LastAction != "", "%d of %d services, last action %q", len(sp.Status.Services), len(services), sp.Status.LastAction)
	})
	for _, s := range sp.Status.Services {
		if s.Recommended == nil || s.Reason == "" {
			t.Errorf("%s: recommended %v, reason %q", s.Name, s.Recommended, s.Reason)
			continue
		}
		if (s.Name == "scheduler" || s.Name == "notifier" || s.Name == "messengers") && *s.Recommended != 1 {
			t.Errorf("single-instance %s recommended %d", s.Name, *s.Recommended)
		}
	}
	raw, err := admin.CoreV1().RESTClient().Get().AbsPath("/apis/elmascale.io/v1alpha1/namespaces/"+ns+"/scalingpolicies").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil || len(table.Rows) != 1 {
		t.Fatalf("table %s: %v", raw, err)
	}
	cells := map[string]any{}
	for i, col := range table.ColumnDefinitions {
		cells[col.Name] = table.Rows[0].Cells[i]
	}
	if cells["Mode"] != "dry-run" || cells["Services"] != float64(len(services)) || cells["Last Action"] == "" {
		t.Errorf("kubectl get shows %v", cells)
	}
	t.Logf("kubectl get scalingpolicies: %v", cells)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Verifies that a daemon started before its ScalingPolicy exists stays
// alive but not ready (its liveness probe passes, its readiness probe says
// what it waits for, so the pod is not restarted), says in the status why
// a first generation that does not compile is not taken, and starts as
// soon as a good one is applied.
func TestDaemonWaitsForItsPolicy(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "api", 1, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	health := ln.Addr().String()
	ln.Close()

	listening := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{RESTConfig: c.UserConfig(testcluster.UserElmascale), Policy: ns + "/late", Mode: scaler.ModeDryRun,
			HealthAddr: health, MetricsAddr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Identity: "late",
			OnListen: func(string, string) { close(listening) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	probe := func(path string) (int, string) {
		resp, err := http.Get("http://" + health + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	kubetest.WaitFor(t, 20*time.Second, "the waiting probes", func() error {
		code, body := probe("/readyz")
		return want(code == http.StatusServiceUnavailable && strings.Contains(body, "waiting for the ScalingPolicy"), "readyz %d %q", code, body)
	})
	if code, body := probe("/healthz"); code != http.StatusOK {
		t.Errorf("healthz %d %q while waiting: the pod would be restarted", code, body)
	}

	pc := policyClient{t: t, ri: dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)}
	pc.apply("apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: late}\nspec:\n  interval: 1s\n  services:\n    api: {dependsOn: [db]}\n")
	pc.waitStatus("late", "Ready False for the first generation", func(sp *v1alpha1.ScalingPolicy) error {
		r := condition(sp, v1alpha1.ConditionReady)
		return want(r.Reason == "InvalidSpec" && strings.Contains(r.Message, "nothing is scaled"), "Ready %+v", r)
	})
	if code, body := probe("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "db") {
		t.Errorf("readyz %d %q: want the compile error", code, body)
	}
	pc.apply("apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: late}\nspec:\n  interval: 1s\n  services:\n    api: {}\n")
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not start once the policy compiled")
	}
	pc.waitStatus("late", "generation 2 in force", func(sp *v1alpha1.ScalingPolicy) error {
		return want(sp.Status.ObservedGeneration == 2 && len(sp.Status.Services) == 1 && condition(sp, v1alpha1.ConditionReady).Status == metav1.ConditionTrue, "status %+v", sp.Status)
	})
}
