package scaler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

const ns = "elma365"

func deployment(name string, replicas, ready int32, ann map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann, ResourceVersion: "7"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status:     appsv1.DeploymentStatus{ReadyReplicas: ready},
	}
}

func hpaFor(name, target string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			MaxReplicas:    5,
		},
	}
}

func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, meta.RESTScopeNamespace)
	return m
}

func testConfig(t *testing.T, services ...string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: " + ns + "\nservices:\n")
	for _, s := range services {
		b.WriteString("  " + s + ": {}\n")
	}
	cfg, err := config.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

type harness struct {
	s      *Scaler
	scales *scalefake.FakeScaleClient
	events *record.FakeRecorder
	leader bool
}

func newHarness(t *testing.T, mode Mode, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{scales: &scalefake.FakeScaleClient{}, events: record.NewFakeRecorder(100), leader: true}
	s, err := New(Options{
		Client:    fake.NewClientset(objs...),
		Scales:    h.scales,
		Mapper:    testMapper(),
		Namespace: ns,
		Mode:      mode,
		IsLeader:  func() bool { return h.leader },
		Events:    h.events,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// Verifies that Observe reads replicas from the cache and names who else
// owns a target, recording one Event per change of hand-off state.
func TestObserveHandoffs(t *testing.T) {
	h := newHarness(t, ModeApply,
		deployment("worker", 3, 2, nil),
		deployment("main", 2, 2, nil),
		deployment("chat", 2, 1, map[string]string{AnnotationPaused: "true"}),
		hpaFor("main-hpa", "main"),
	)
	cfg := testConfig(t, "worker", "main", "chat", "absent")
	got, err := h.s.Observe(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]loop.TargetStatus{
		"worker": {Found: true, Current: 3, Ready: 2},
		"main":   {Found: true, Current: 2, Ready: 2, HandedOff: "HorizontalPodAutoscaler/main-hpa"},
		"chat":   {Found: true, Current: 2, Ready: 1, HandedOff: OwnerPaused},
		"absent": {},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Observe (-want,+got):\n%s", d)
	}
	ev := h.drainEvents()
	if len(ev) != 2 {
		t.Fatalf("want 2 hand-off events, got %q", ev)
	}
	for _, e := range ev {
		if !strings.Contains(e, ReasonHandedOff) {
			t.Errorf("event %q lacks reason %s", e, ReasonHandedOff)
		}
	}
	if _, err := h.s.Observe(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if ev := h.drainEvents(); len(ev) != 0 {
		t.Errorf("second Observe with no change recorded events %q", ev)
	}
}

func plan(ds ...policy.Decision) policy.Plan { return policy.Plan{Decisions: ds} }

// Verifies that the leader writes a change through the scale subresource
// with the cached resourceVersion, and retries a conflict with a fresh read.
func TestApplyRetriesConflict(t *testing.T) {
	h := newHarness(t, ModeApply, deployment("worker", 2, 2, nil))
	cfg := testConfig(t, "worker")
	if _, err := h.s.Observe(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	updates := 0
	var sentRV []string
	h.scales.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sc := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		updates++
		sentRV = append(sentRV, sc.ResourceVersion)
		if updates == 1 {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "worker", nil)
		}
		return true, sc, nil
	})
	h.scales.AddReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns, ResourceVersion: "8"}, Spec: autoscalingv1.ScaleSpec{Replicas: 2}}, nil
	})
	out := h.s.Apply(context.Background(), cfg, plan(policy.Decision{Service: "worker", Current: 2, Desired: 5, Reason: "queue backlog"}))
	if d := cmp.Diff([]loop.Outcome{{Service: "worker", Applied: true}}, out); d != "" {
		t.Errorf("outcomes (-want,+got):\n%s", d)
	}
	if d := cmp.Diff([]string{"7", "8"}, sentRV); d != "" {
		t.Errorf("resourceVersions sent (-want,+got):\n%s", d)
	}
	ev := h.drainEvents()
	if len(ev) != 1 || !strings.Contains(ev[0], ReasonScaledUp) || !strings.Contains(ev[0], "queue backlog") {
		t.Errorf("events = %q, want one %s carrying the reason", ev, ReasonScaledUp)
	}
}

// Verifies that a conflict whose re-read shows someone else changed the
// replicas drops the stale decision instead of forcing it.
func TestApplyDropsStaleDecision(t *testing.T) {
	h := newHarness(t, ModeApply, deployment("worker", 2, 2, nil))
	cfg := testConfig(t, "worker")
	if _, err := h.s.Observe(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	updates := 0
	h.scales.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		updates++
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "worker", nil)
	})
	h.scales.AddReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns, ResourceVersion: "9"}, Spec: autoscalingv1.ScaleSpec{Replicas: 7}}, nil
	})
	out := h.s.Apply(context.Background(), cfg, plan(policy.Decision{Service: "worker", Current: 2, Desired: 5}))
	if d := cmp.Diff([]loop.Outcome{{Service: "worker", Skipped: SkipChanged}}, out); d != "" {
		t.Errorf("outcomes (-want,+got):\n%s", d)
	}
	if updates != 1 {
		t.Errorf("%d updates, want 1 (no retry over a concurrent scale)", updates)
	}
	if ev := h.drainEvents(); len(ev) != 0 {
		t.Errorf("events %q for a dropped decision", ev)
	}
}

// Verifies that nothing is written in dry-run, by a non-leader, for a
// handed-off target or when nothing changes.
func TestApplyWritesNothing(t *testing.T) {
	objs := []runtime.Object{deployment("worker", 2, 2, nil), deployment("main", 2, 2, nil), hpaFor("h", "main")}
	up := plan(policy.Decision{Service: "worker", Current: 2, Desired: 4}, policy.Decision{Service: "main", Current: 2, Desired: 4})
	cases := []struct {
		name   string
		mode   Mode
		leader bool
		plan   policy.Plan
		want   []loop.Outcome
	}{
		{"dry-run", ModeDryRun, true, up, []loop.Outcome{
			{Service: "worker", Recommended: true},
			{Service: "main", Skipped: "handed off: HorizontalPodAutoscaler/h scales this target"}}},
		{"not leader", ModeApply, false, up, []loop.Outcome{
			{Service: "worker", Skipped: SkipNotLeader},
			{Service: "main", Skipped: "handed off: HorizontalPodAutoscaler/h scales this target"}}},
		{"no change", ModeApply, true, plan(policy.Decision{Service: "worker", Current: 2, Desired: 2}), []loop.Outcome{
			{Service: "worker", Skipped: SkipNoChange}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mode, objs...)
			h.leader = tc.leader
			cfg := testConfig(t, "worker", "main")
			if _, err := h.s.Observe(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			out := h.s.Apply(context.Background(), cfg, tc.plan)
			if d := cmp.Diff(tc.want, out); d != "" {
				t.Errorf("outcomes (-want,+got):\n%s", d)
			}
			for _, a := range h.scales.Actions() {
				t.Errorf("unexpected scale request %s", a.GetVerb())
			}
		})
	}
}

// Verifies that a pinned service found above one is brought back with a
// Warning Event.
func TestApplyPinnedWarns(t *testing.T) {
	h := newHarness(t, ModeApply, deployment("scheduler", 3, 3, nil))
	cfg := testConfig(t, "scheduler")
	if _, err := h.s.Observe(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.scales.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, a.(k8stesting.UpdateAction).GetObject(), nil
	})
	out := h.s.Apply(context.Background(), cfg, plan(policy.Decision{Service: "scheduler", Current: 3, Desired: 1, LimitedBy: policy.LimitPinned}))
	if !out[0].Applied {
		t.Fatalf("outcome %+v, want applied", out[0])
	}
	ev := h.drainEvents()
	if len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning "+ReasonPinnedScaledTo1) {
		t.Errorf("events = %q, want one Warning %s", ev, ReasonPinnedScaledTo1)
	}
}

// Verifies that the slimming transform keeps what Observe reads.
func TestSlimKeepsReplicas(t *testing.T) {
	d := deployment("w", 4, 3, map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 1000),
		"deployment.kubernetes.io/revision": "7", "meta.helm.sh/release-name": "elma365", AnnotationPaused: "true", AnnotationSingleInstance: "true"})
	d.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	d.Labels = map[string]string{"app": "w", "app.kubernetes.io/managed-by": "Helm"}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}
	d.Spec.Template.Labels = map[string]string{"app": "w"}
	o, _ := slim(d)
	got := o.(*appsv1.Deployment)
	if *got.Spec.Replicas != 4 || got.Status.ReadyReplicas != 3 || got.Name != "w" || got.Annotations[AnnotationPaused] != "true" || !singleInstance(got) {
		t.Errorf("slim lost replicas, the name or elmascale's annotations: %+v", got)
	}
	if len(got.Annotations) != 2 || got.ManagedFields != nil || got.Labels != nil || got.Spec.Selector != nil || got.Spec.Template.Labels != nil {
		t.Errorf("slim kept what Observe does not read: %+v %+v", got.ObjectMeta, got.Spec)
	}
}

// Verifies fencing: leadership is asked right before every write, so a
// leader deposed by its first write of a tick writes nothing more, and the
// dropped decisions are not reported as failures.
func TestApplyFencedAfterDeposition(t *testing.T) {
	h := newHarness(t, ModeApply, deployment("worker", 2, 2, nil), deployment("main", 2, 2, nil))
	cfg := testConfig(t, "worker", "main")
	if _, err := h.s.Observe(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	updates := 0
	h.scales.AddReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		updates++
		h.leader = false // the lease is taken over while this write lands
		return true, a.(k8stesting.UpdateAction).GetObject(), nil
	})
	out := h.s.Apply(context.Background(), cfg, plan(
		policy.Decision{Service: "worker", Current: 2, Desired: 4},
		policy.Decision{Service: "main", Current: 2, Desired: 4}))
	want := []loop.Outcome{{Service: "worker", Applied: true}, {Service: "main", Skipped: SkipNotLeader}}
	if d := cmp.Diff(want, out); d != "" {
		t.Errorf("outcomes (-want,+got):\n%s", d)
	}
	if updates != 1 {
		t.Errorf("%d scale updates, want 1: none after deposition", updates)
	}
	for _, e := range h.drainEvents() {
		if strings.Contains(e, ReasonScaleFailed) {
			t.Errorf("deposition recorded as a failure: %q", e)
		}
	}
}

// Verifies that while the ScaledObject informer has not filled its cache
// Observe holds (an error, no targets) rather than report a target KEDA
// scales as nobody's, and that once it has, the target is handed off.
func TestObserveHoldsUntilScaledObjectsSynced(t *testing.T) {
	h := newHarness(t, ModeApply, deployment("worker", 1, 1, nil))
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "worker-so", "namespace": ns},
		"spec":     map[string]any{"scaleTargetRef": map[string]any{"name": "worker"}},
	}}
	if err := idx.Add(so); err != nil {
		t.Fatal(err)
	}
	synced := false
	h.s.mu.Lock()
	h.s.soLister = cache.NewGenericLister(idx, ScaledObjectGVR.GroupResource())
	h.s.soSynced = func() bool { return synced }
	h.s.mu.Unlock()
	cfg := testConfig(t, "worker")
	got, err := h.s.Observe(context.Background(), cfg)
	if !errors.Is(err, errScaledObjectsNotSynced) || got != nil {
		t.Fatalf("Observe before the ScaledObject cache synced: %v, %v; want no targets and errScaledObjectsNotSynced", got, err)
	}
	synced = true
	got, err = h.s.Observe(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if w := got["worker"]; w.HandedOff != OwnerScaledObject+"/worker-so" {
		t.Errorf("worker after the sync: %+v, want handed off to ScaledObject/worker-so", w)
	}
}

// Verifies Start with KEDA installed: when the ScaledObjects can be
// listed, slowly, the first Observe already hands their targets off; when
// they cannot (a missing permission), Start returns after
// ScaledObjectWait instead of hanging, and every Observe holds, saying why.
func TestStartWaitsForScaledObjects(t *testing.T) {
	for _, listable := range []bool{true, false} {
		client := fake.NewClientset(deployment("worker", 1, 1, nil))
		disc := client.Discovery().(*fakediscovery.FakeDiscovery)
		disc.Resources = []*metav1.APIResourceList{{GroupVersion: "keda.sh/v1alpha1", APIResources: []metav1.APIResource{{Name: "scaledobjects", Namespaced: true, Kind: "ScaledObject"}}}}
		so := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
			"metadata": map[string]any{"name": "worker-so", "namespace": ns},
			"spec":     map[string]any{"scaleTargetRef": map[string]any{"name": "worker"}},
		}}
		dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{ScaledObjectGVR: "ScaledObjectList"}, so)
		wait := 5 * time.Second
		if listable {
			// A slow list, as from a busy API server: the wait covers it.
			dyn.PrependReactor("list", "scaledobjects", func(k8stesting.Action) (bool, runtime.Object, error) {
				time.Sleep(300 * time.Millisecond)
				return false, nil, nil
			})
		} else {
			wait = 300 * time.Millisecond
			dyn.PrependReactor("list", "scaledobjects", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(ScaledObjectGVR.GroupResource(), "", errors.New("no list permission"))
			})
		}
		s, err := New(Options{Client: client, Scales: &scalefake.FakeScaleClient{}, Mapper: testMapper(), Namespace: ns,
			Mode: ModeApply, Dynamic: dyn, Discovery: disc, Events: record.NewFakeRecorder(100), ScaledObjectWait: wait})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		if err := s.Start(ctx); err != nil {
			t.Fatalf("listable %v: Start: %v", listable, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("listable %v: Start returned only when its context ended (%s)", listable, time.Since(start))
		}
		got, err := s.Observe(context.Background(), testConfig(t, "worker"))
		cancel()
		switch {
		case listable && err != nil:
			t.Errorf("Observe with ScaledObjects listable: %v", err)
		case listable && got["worker"].HandedOff != OwnerScaledObject+"/worker-so":
			t.Errorf("first Observe after Start: worker %+v, want handed off to ScaledObject/worker-so", got["worker"])
		case !listable && !errors.Is(err, errScaledObjectsNotSynced):
			t.Errorf("Observe with ScaledObjects unlistable: %v, %v; want errScaledObjectsNotSynced", got, err)
		}
	}
}
