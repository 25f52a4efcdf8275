package daemon

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/util/retry"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

// deposingMapper runs depose the first time the scaler maps a kind: in the
// middle of Apply, after the decision and the tick's leadership check,
// right before the write.
type deposingMapper struct {
	meta.RESTMapper
	once   sync.Once
	depose func()
}

func (m *deposingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.once.Do(m.depose)
	return m.RESTMapper.RESTMapping(gk, versions...)
}

// countingScales counts scale updates sent to the API server.
type countingScales struct {
	scale.ScalesGetter
	mu      sync.Mutex
	updates int
}

func (c *countingScales) Scales(ns string) scale.ScaleInterface {
	return countingScale{ScaleInterface: c.ScalesGetter.Scales(ns), c: c}
}

type countingScale struct {
	scale.ScaleInterface
	c *countingScales
}

func (s countingScale) Update(ctx context.Context, gr schema.GroupResource, sc *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	s.c.mu.Lock()
	s.c.updates++
	s.c.mu.Unlock()
	return s.ScaleInterface.Update(ctx, gr, sc, opts)
}

type loadCollector struct{ total float64 }

func (l loadCollector) Collect(_ context.Context, cfg *config.Config, now time.Time) (loop.Signals, error) {
	out := loop.Signals{}
	for _, s := range cfg.Services {
		out[s.Name] = map[string]policy.Observation{}
		for _, sg := range s.Signals {
			out[s.Name][sg.Name] = policy.Observation{Status: policy.StatusOK, Time: now, Value: l.total}
		}
	}
	return out, nil
}

// Verifies fencing on the real API server: a leader whose Lease another
// identity takes over in the middle of Apply (after it decided, before it
// writes) sends no write, and its tick's context ends with its term.
func TestDeposedLeaderDoesNotWrite(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil))
	rc := c.UserConfig(testcluster.UserElmascale)
	client := kubernetes.NewForConfigOrDie(rc)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leading := &Leadership{}
	le := LeaderElection{Client: client, Namespace: ns, Name: "elmascale", Identity: "deposed",
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 300 * time.Millisecond}
	go func() { _ = elect(ctx, le, leading, func(bool) {}, zap.NewNop()) }()
	kubetest.WaitFor(t, 15*time.Second, "leadership", func() error {
		if !leading.IsLeader() {
			return fmt.Errorf("not leading yet")
		}
		return nil
	})

	var tickCtx context.Context
	deposedAt := time.Time{}
	mapper := &deposingMapper{RESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))}
	mapper.depose = func() {
		// Another replica takes the Lease over, as after a long GC pause
		// of this one.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			l, err := admin.CoordinationV1().Leases(ns).Get(ctx, "elmascale", metav1.GetOptions{})
			if err != nil {
				return err
			}
			usurper, secs, now := "usurper", int32(60), metav1.NewMicroTime(time.Now())
			l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = &usurper, &secs, &now, &now
			_, err = admin.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Errorf("take the lease over: %v", err)
			return
		}
		deposedAt = time.Now()
		// Wait until this process could know: its next renewal attempt
		// (or client-go giving up, RenewDeadline later) sees the usurper.
		deadline := time.Now().Add(10 * time.Second)
		for leading.IsLeader() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("deposition noticed after %s", time.Since(deposedAt).Round(time.Millisecond))
	}
	real, err := scale.NewForConfig(rc, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(client.Discovery()))
	if err != nil {
		t.Fatal(err)
	}
	scales := &countingScales{ScalesGetter: real}
	sc, err := scaler.NewForConfig(rc, scaler.Options{Client: client, Mapper: mapper, Scales: scales,
		Namespace: ns, Mode: scaler.ModeApply, IsLeader: leading.IsLeader})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: " + ns +
		"\nmetrics: {load: {prometheus: {query: x}}}\ndefaults: {minReplicas: 1, maxReplicas: 6}\n" +
		"services:\n  worker: {signals: [{name: load, perReplica: {metric: load, targetPerReplica: 100}}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: loadCollector{total: 350}, Scaler: sc}

	tctx, done := leading.TickContext(ctx)
	tickCtx = tctx
	tk := lp.RunOnce(tctx, time.Now())
	done()
	if d, _ := tk.Plan.Decision("worker"); d.Desired != 4 {
		t.Fatalf("decision %+v, want 4 (the test needs a write to fence)", d)
	}
	if deposedAt.IsZero() {
		t.Fatal("the leader was never deposed mid-apply")
	}
	scales.mu.Lock()
	n := scales.updates
	scales.mu.Unlock()
	if n != 0 {
		t.Errorf("the deposed leader sent %d scale updates", n)
	}
	if o := tk.Outcomes[0]; o.Applied || o.Skipped != scaler.SkipNotLeader {
		t.Errorf("outcome %+v, want skipped as not leader", o)
	}
	if tickCtx.Err() == nil {
		t.Error("the tick's context did not end with the term")
	}
	if spec, _ := kubetest.Replicas(t, admin, ns, "worker"); spec != 1 {
		t.Errorf("worker at %d after the deposed leader's tick", spec)
	}
}
