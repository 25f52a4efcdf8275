package scaler_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// load is a collector whose perReplica "load" signal reports a settable
// total for every service, so the real policy asks for ceil(load/100).
type load struct {
	mu    sync.Mutex
	total float64
}

func (l *load) set(v float64) { l.mu.Lock(); l.total = v; l.mu.Unlock() }

func (l *load) Collect(_ context.Context, cfg *config.Config, now time.Time) (loop.Signals, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := loop.Signals{}
	for _, s := range cfg.Services {
		out[s.Name] = map[string]policy.Observation{}
		for _, sg := range s.Signals {
			out[s.Name][sg.Name] = policy.Observation{Status: policy.StatusOK, Time: now, Value: l.total}
		}
	}
	return out, nil
}

// configFor is a config scaling each service on the "load" signal at 100
// per replica, scaling at once in both directions.
func configFor(t *testing.T, ns string, extra string, services ...string) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
%s
metrics:
  load: {prometheus: {query: "sum by (service) (load)"}}
defaults:
  minReplicas: 1
  maxReplicas: 6
  behavior:
    scaleDown: {stabilizationWindow: 0s}
services:
`, ns, extra)
	for _, s := range services {
		fmt.Fprintf(&b, "  %s: {signals: [{name: load, perReplica: {metric: load, targetPerReplica: 100}}]}\n", s)
	}
	cfg, err := config.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

type env struct {
	admin kubernetes.Interface
	ns    string
	c     *testcluster.Cluster
}

func newEnv(t *testing.T, extraRBAC ...string) env {
	c := testcluster.ForTest(t)
	return env{admin: kubernetes.NewForConfigOrDie(c.AdminConfig), ns: kubetest.Namespace(t, c, extraRBAC...), c: c}
}

// newScaler builds a scaler as user elmascale, so every test also proves
// the shipped RBAC is enough.
func (e env) newScaler(t *testing.T, opts scaler.Options) *scaler.Scaler {
	t.Helper()
	opts.Namespace = e.ns
	s, err := scaler.NewForConfig(e.c.UserConfig(testcluster.UserElmascale), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); s.Close() })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// tickUntil runs the loop until cond holds, at most 30 ticks 300ms apart.
func tickUntil(t *testing.T, l *loop.Loop, what string, cond func(loop.Tick) bool) loop.Tick {
	t.Helper()
	var last loop.Tick
	for i := 0; i < 30; i++ {
		last = l.RunOnce(context.Background(), time.Now())
		if cond(last) {
			return last
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("after 30 ticks, still not %s; last tick: err %v, outcomes %+v, plan %+v", what, last.Err, last.Outcomes, last.Plan.Decisions)
	return last
}

func applied(service string) func(loop.Tick) bool {
	return func(t loop.Tick) bool {
		for _, o := range t.Outcomes {
			if o.Service == service && o.Applied {
				return true
			}
		}
		return false
	}
}

// Verifies that in apply mode the loop scales a Deployment up and down
// through the scale subresource, its pods become Ready (KWOK), and each
// change is recorded as an Event carrying the decision's reason.
func TestApplyScalesDeployment(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	cfg := configFor(t, e.ns, "", "worker")
	l := &load{total: 350}
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: l,
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}

	tickUntil(t, lp, "scaled up", applied("worker"))
	kubetest.WaitReplicas(t, e.admin, e.ns, "worker", 4, 30*time.Second)
	kubetest.WaitEvent(t, e.admin, e.ns, "worker", "Normal ScaledUp", "replicas 1 → 4")

	l.set(150)
	tickUntil(t, lp, "scaled down", applied("worker"))
	kubetest.WaitReplicas(t, e.admin, e.ns, "worker", 2, 30*time.Second)
	kubetest.WaitEvent(t, e.admin, e.ns, "worker", "Normal ScaledDown", "replicas 4 → 2")
}

// Verifies that dry-run publishes the same decision as a recommendation,
// optionally as an annotation, and never writes spec.replicas.
func TestDryRunLeavesReplicas(t *testing.T) {
	e := newEnv(t, filepath.Join(kubetest.RepoRoot(), "deploy", "rbac", "annotate-recommendations.yaml"))
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	cfg := configFor(t, e.ns, "", "worker")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 350},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeDryRun, AnnotateRecommendations: true})}

	var tk loop.Tick
	for i := 0; i < 5; i++ {
		tk = lp.RunOnce(context.Background(), time.Now())
		time.Sleep(200 * time.Millisecond)
	}
	if d, _ := tk.Plan.Decision("worker"); d.Desired != 4 || !tk.Outcomes[0].Recommended || tk.Outcomes[0].Err != nil {
		t.Fatalf("decision %+v outcome %+v, want a recommendation of 4", d, tk.Outcomes[0])
	}
	if spec, _ := kubetest.Replicas(t, e.admin, e.ns, "worker"); spec != 1 {
		t.Errorf("dry-run changed spec.replicas to %d", spec)
	}
	d, err := e.admin.AppsV1().Deployments(e.ns).Get(context.Background(), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Annotations[scaler.AnnotationRecommended]; got != "4" {
		t.Errorf("annotation %s = %q, want 4", scaler.AnnotationRecommended, got)
	}
}

// Verifies that a Deployment an HPA scales and a paused one are left
// alone, each with one HandedOff Event however many ticks pass, and that
// lifting the pause hands the target back with an Event.
func TestHandOff(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin,
		kubetest.Deployment(e.ns, "main", 1, nil),
		kubetest.Deployment(e.ns, "chat", 1, map[string]string{scaler.AnnotationPaused: "true"}))
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "main-hpa", Namespace: e.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "main"},
			MaxReplicas:    3,
		},
	}
	if _, err := e.admin.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := configFor(t, e.ns, "", "main", "chat")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 350},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}

	tk := tickUntil(t, lp, "both handed off", func(tk loop.Tick) bool { return len(tk.HandedOff) == 2 })
	if tk.HandedOff["main"] != "HorizontalPodAutoscaler/main-hpa" || tk.HandedOff["chat"] != scaler.OwnerPaused {
		t.Errorf("HandedOff = %v", tk.HandedOff)
	}
	for i := 0; i < 4; i++ {
		lp.RunOnce(context.Background(), time.Now())
	}
	for _, o := range tk.Outcomes {
		if o.Applied || !strings.HasPrefix(o.Skipped, "handed off") {
			t.Errorf("outcome %+v, want skipped as handed off", o)
		}
	}
	for _, name := range []string{"main", "chat"} {
		if spec, _ := kubetest.Replicas(t, e.admin, e.ns, name); spec != 1 {
			t.Errorf("%s scaled to %d while handed off", name, spec)
		}
		evs := kubetest.WaitEvent(t, e.admin, e.ns, name, "Normal HandedOff")
		time.Sleep(time.Second) // let any duplicate arrive
		if evs = kubetest.Events(t, e.admin, e.ns, name); len(evs) != 1 {
			t.Errorf("%s events = %q, want exactly one HandedOff", name, evs)
		}
	}

	patch := []byte(`{"metadata":{"annotations":{"` + scaler.AnnotationPaused + `":null}}}`)
	if _, err := e.admin.AppsV1().Deployments(e.ns).Patch(context.Background(), "chat", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	tickUntil(t, lp, "chat scaled after the pause is lifted", applied("chat"))
	kubetest.WaitEvent(t, e.admin, e.ns, "chat", "Normal HandOffEnded")
	kubetest.WaitReplicas(t, e.admin, e.ns, "chat", 4, 30*time.Second)
}

// Verifies that an ELMA365 single-instance service found at 3 replicas is
// brought back to 1 with a Warning Event, whatever its signals say.
func TestPinnedBackToOne(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "scheduler", 3, nil))
	cfg, err := config.Parse([]byte("apiVersion: elmascale.io/v1alpha1\nkind: Config\nplatform: elma365\nnamespace: " + e.ns +
		"\nservices:\n  scheduler: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}
	tickUntil(t, lp, "scheduler scaled", applied("scheduler"))
	kubetest.WaitReplicas(t, e.admin, e.ns, "scheduler", 1, 30*time.Second)
	kubetest.WaitEvent(t, e.admin, e.ns, "scheduler", "Warning PinnedServiceScaledDown", "replicas 3 → 1")
}

// bumpingScales changes the Deployment behind the scaler's back right
// before its first scale update, so that update carries a stale
// resourceVersion and must conflict.
type bumpingScales struct {
	scale.ScalesGetter
	bump    func()
	mu      sync.Mutex
	updates []string // resourceVersion sent with each update
}

func (b *bumpingScales) Scales(ns string) scale.ScaleInterface {
	return &bumpingScale{ScaleInterface: b.ScalesGetter.Scales(ns), b: b}
}

type bumpingScale struct {
	scale.ScaleInterface
	b *bumpingScales
}

func (s *bumpingScale) Update(ctx context.Context, gr schema.GroupResource, sc *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	s.b.mu.Lock()
	first := len(s.b.updates) == 0
	s.b.updates = append(s.b.updates, sc.ResourceVersion)
	s.b.mu.Unlock()
	if first {
		s.b.bump()
	}
	return s.ScaleInterface.Update(ctx, gr, sc, opts)
}

// Verifies that a write that conflicts with a concurrent change of the
// Deployment is retried with a fresh resourceVersion and lands.
func TestConflictRetried(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	rc := e.c.UserConfig(testcluster.UserElmascale)
	client := kubernetes.NewForConfigOrDie(rc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	real, err := scale.NewForConfig(rc, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(client.Discovery()))
	if err != nil {
		t.Fatal(err)
	}
	bs := &bumpingScales{ScalesGetter: real, bump: func() {
		patch := []byte(`{"metadata":{"annotations":{"test/bumped":"` + time.Now().Format(time.RFC3339Nano) + `"}}}`)
		if _, err := e.admin.AppsV1().Deployments(e.ns).Patch(context.Background(), "worker", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("bump: %v", err)
		}
	}}
	cfg := configFor(t, e.ns, "", "worker")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 300},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply, Client: client, Scales: bs, Mapper: mapper})}
	tk := tickUntil(t, lp, "applied", applied("worker"))
	if tk.Outcomes[0].Err != nil {
		t.Fatal(tk.Outcomes[0].Err)
	}
	// The Deployment controller may write the object again between the
	// retry's read and its write, which makes one more conflict and one
	// more retry; every retry must carry a fresher version than the one
	// before it.
	fresh := len(bs.updates) >= 2
	for i := 1; i < len(bs.updates); i++ {
		fresh = fresh && bs.updates[i] != bs.updates[i-1]
	}
	if !fresh {
		t.Errorf("updates sent with resourceVersions %q, want a conflict then retries each with a fresh one", bs.updates)
	}
	if spec, _ := kubetest.Replicas(t, e.admin, e.ns, "worker"); spec != 3 {
		t.Errorf("spec.replicas = %d, want 3", spec)
	}
}

// Verifies that a Deployment a KEDA ScaledObject scales is handed off once
// the CRD is served, found through the dynamic informer.
func TestHandOffToScaledObject(t *testing.T) {
	e := newEnv(t)
	kubetest.InstallScaledObjectCRD(t, e.c)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	kubetest.CreateScaledObject(t, e.c, e.ns, "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: worker-so}\n"+
		"spec:\n  scaleTargetRef: {name: worker}\n  triggers: [{type: cpu, metadata: {value: \"50\"}}]\n")
	cfg := configFor(t, e.ns, "", "worker")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 350},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}
	tk := tickUntil(t, lp, "handed off to the ScaledObject", func(tk loop.Tick) bool { return tk.HandedOff["worker"] != "" })
	if got := tk.HandedOff["worker"]; got != "ScaledObject/worker-so" {
		t.Errorf("HandedOff = %q", got)
	}
	kubetest.WaitEvent(t, e.admin, e.ns, "worker", "Normal HandedOff", "ScaledObject/worker-so")
	if spec, _ := kubetest.Replicas(t, e.admin, e.ns, "worker"); spec != 1 {
		t.Errorf("worker scaled to %d while a ScaledObject owns it", spec)
	}
}

// Verifies that when someone else scales the Deployment between Observe
// and the write, the stale decision is dropped rather than forced over
// their change, and the next tick decides from the new count.
func TestConcurrentScaleDropsStaleDecision(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	rc := e.c.UserConfig(testcluster.UserElmascale)
	client := kubernetes.NewForConfigOrDie(rc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	real, err := scale.NewForConfig(rc, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(client.Discovery()))
	if err != nil {
		t.Fatal(err)
	}
	bs := &bumpingScales{ScalesGetter: real, bump: func() {
		patch := []byte(`{"spec":{"replicas":2}}`)
		if _, err := e.admin.AppsV1().Deployments(e.ns).Patch(context.Background(), "worker", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("bump: %v", err)
		}
	}}
	cfg := configFor(t, e.ns, "", "worker")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 500},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply, Client: client, Scales: bs, Mapper: mapper})}
	tk := lp.RunOnce(context.Background(), time.Now())
	if o := tk.Outcomes[0]; o.Applied || o.Skipped != scaler.SkipChanged {
		t.Fatalf("first tick outcome %+v, want skipped as changed", o)
	}
	if spec, _ := kubetest.Replicas(t, e.admin, e.ns, "worker"); spec != 2 {
		t.Errorf("spec.replicas = %d after the dropped decision, want the concurrent 2", spec)
	}
	// The policy's rate limit (100% or 4 pods per 15 s) allows 2 → 5.
	tickUntil(t, lp, "applied from the new count", applied("worker"))
	kubetest.WaitReplicas(t, e.admin, e.ns, "worker", 5, 30*time.Second)
}

// Verifies that a workload carrying the single-instance annotation is held
// at one whatever its config entry and signals say: found at 3 with a load
// asking for 4, it is brought back to 1 with a Warning Event.
func TestAnnotatedWorkloadIsPinned(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "cron", 3, map[string]string{scaler.AnnotationSingleInstance: "true"}))
	cfg := configFor(t, e.ns, "", "cron")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 350},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}
	tk := tickUntil(t, lp, "cron scaled", applied("cron"))
	if d, _ := tk.Plan.Decision("cron"); d.Desired != 1 || d.LimitedBy != policy.LimitPinned {
		t.Errorf("decision %+v, want 1 limited by pinned", d)
	}
	if v, ok := tk.Pinned["cron"]; !ok || !strings.Contains(v, "found at 3 replicas") {
		t.Errorf("tick pinned = %q, want cron's violation", tk.Pinned)
	}
	kubetest.WaitReplicas(t, e.admin, e.ns, "cron", 1, 30*time.Second)
	kubetest.WaitEvent(t, e.admin, e.ns, "cron", "Warning "+scaler.ReasonPinnedScaledTo1, "replicas 3 → 1")
	for i := 0; i < 3; i++ {
		if tk := lp.RunOnce(context.Background(), time.Now()); tk.Outcomes[0].Applied {
			t.Fatalf("cron written again at one replica: %+v", tk.Outcomes[0])
		}
	}
	if spec, _ := kubetest.Replicas(t, e.admin, e.ns, "cron"); spec != 1 {
		t.Errorf("cron at %d", spec)
	}
}

// Verifies that a hand-scaled single-instance service whose own signal
// asks for one (so the policy's limit is its max, not the pin) returns to
// one with a Warning Event, never a Normal ScaledDown.
func TestHandScaledNotifierWarns(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "notifier", 3, nil))
	cfg := configFor(t, e.ns, "platform: elma365\nedition: standard", "notifier")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 50},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}
	tickUntil(t, lp, "notifier scaled", applied("notifier"))
	kubetest.WaitReplicas(t, e.admin, e.ns, "notifier", 1, 30*time.Second)
	evs := kubetest.WaitEvent(t, e.admin, e.ns, "notifier", "Warning "+scaler.ReasonPinnedScaledTo1, "replicas 3 → 1")
	for _, ev := range evs {
		if strings.Contains(ev, "Normal") {
			t.Errorf("a single-instance service's return to one recorded as %q", ev)
		}
	}
}

// Verifies that an HPA on a single-instance service is refused: the
// scaler writes the target back to one although the HPA exists, says so
// with a Warning Event, and never reports it handed off.
func TestPinnedHandOffRefused(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "notifier", 3, nil))
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "notifier-hpa", Namespace: e.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "notifier"},
			MinReplicas:    new(int32(3)),
			MaxReplicas:    3,
		},
	}
	if _, err := e.admin.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := configFor(t, e.ns, "platform: elma365\nedition: standard", "notifier")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 50},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply})}
	tk := tickUntil(t, lp, "notifier scaled despite the HPA", func(tk loop.Tick) bool {
		return applied("notifier")(tk) || strings.Contains(tk.Pinned["notifier"], "refused")
	})
	if len(tk.HandedOff) != 0 {
		t.Errorf("HandedOff = %v, want none for a pinned target", tk.HandedOff)
	}
	if !strings.Contains(tk.Pinned["notifier"], "hand-off to HorizontalPodAutoscaler/notifier-hpa refused") {
		t.Errorf("pinned = %q", tk.Pinned)
	}
	kubetest.WaitEvent(t, e.admin, e.ns, "notifier", "Warning "+scaler.ReasonPinnedHandOffRefused, "HorizontalPodAutoscaler/notifier-hpa")
	kubetest.WaitEvent(t, e.admin, e.ns, "notifier", "Warning "+scaler.ReasonPinnedScaledTo1, "hand-off is refused")
}

// failingMapper maps nothing, as a discovery outage would.
type failingMapper struct{ meta.RESTMapper }

func (failingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return nil, fmt.Errorf("discovery unavailable for %s", gk)
}

// Verifies that an apply error raised before the write (the REST mapping)
// is not only counted: it is an outcome error and a Warning Event on the
// target.
func TestApplyErrorBeforeWriteIsAnEvent(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	client := kubernetes.NewForConfigOrDie(e.c.UserConfig(testcluster.UserElmascale))
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	cfg := configFor(t, e.ns, "", "worker")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 350},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply, Client: client, Mapper: failingMapper{mapper}})}
	tk := tickUntil(t, lp, "an apply error", func(tk loop.Tick) bool { return len(tk.Outcomes) == 1 && tk.Outcomes[0].Err != nil })
	if err := tk.Outcomes[0].Err; !strings.Contains(err.Error(), "discovery unavailable") {
		t.Errorf("outcome error %v", err)
	}
	kubetest.WaitEvent(t, e.admin, e.ns, "worker", "Warning "+scaler.ReasonScaleFailed, "discovery unavailable")
}

// Verifies that a write to an API server that accepts the connection and
// never answers fails after the write timeout, with a Warning Event, rather
// than hanging the tick until HTTP/2 pings notice.
func TestWriteTimeout(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		hole.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	rc := e.c.UserConfig(testcluster.UserElmascale)
	client := kubernetes.NewForConfigOrDie(rc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	blackholed := rest.CopyConfig(rc)
	blackholed.Host = "https://" + hole.Addr().String()
	scales, err := scale.NewForConfig(blackholed, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(client.Discovery()))
	if err != nil {
		t.Fatal(err)
	}
	cfg := configFor(t, e.ns, "", "worker")
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: &load{total: 350},
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeApply, Client: client, Mapper: mapper, Scales: scales, WriteTimeout: time.Second})}
	start := time.Now()
	tk := tickUntil(t, lp, "a write error", func(tk loop.Tick) bool { return len(tk.Outcomes) == 1 && tk.Outcomes[0].Err != nil })
	if took := tk.Steps[loop.StepApply]; took > 5*time.Second {
		t.Errorf("apply took %s, want about the 1s write timeout", took)
	}
	if err := tk.Outcomes[0].Err; !strings.Contains(err.Error(), "write timeout 1s") {
		t.Errorf("outcome error %v, want it to name the write timeout", err)
	}
	t.Logf("black-holed write failed after %s", time.Since(start).Round(time.Millisecond))
	kubetest.WaitEvent(t, e.admin, e.ns, "worker", "Warning "+scaler.ReasonScaleFailed, "write timeout")
}
