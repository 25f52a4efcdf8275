package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

// bigPolicy is a ScalingPolicy of n services.
func bigPolicy(t *testing.T, n int) *unstructured.Unstructured {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p, namespace: shop, generation: 1}\nspec:\n  services:\n")
	for i := range n {
		fmt.Fprintf(&b, "    svc-%04d: {}\n", i)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(b.String()), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetGeneration(1)
	return &u
}

// tick is a tick where every service is found at current replicas and
// decided at desired.
func tick(at time.Time, n int, desired func(i int) int32) loop.Tick {
	t := loop.Tick{Time: at, Snapshot: policy.Snapshot{Services: map[string]policy.ServiceObservation{}}}
	for i := range n {
		name := fmt.Sprintf("svc-%04d", i)
		t.Snapshot.Services[name] = policy.ServiceObservation{Found: true, CurrentReplicas: 2, ReadyReplicas: 2}
		t.Plan.Decisions = append(t.Plan.Decisions, policy.Decision{Service: name, Current: 2, Ready: 2, Desired: desired(i), Reason: "steady"})
	}
	return t
}

// Verifies that status writes are batched: a tick of 1,000 services is one
// write, a tick that changes nothing is none (later tick time or not), and
// a tick that changes one service is one more; the status holds every
// service.
func TestStatusWritesAreBatched(t *testing.T) {
	const n = 1000
	u := bigPolicy(t, n)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ScalingPolicyList"}, u)
	src := NewPolicySource(dyn, "shop", "p", nil, nil, nil, nil)
	src.take(u)
	if src.Current() == nil || len(src.Current().Services) != n {
		t.Fatalf("policy of %d services not taken: %+v", n, src.State())
	}
	w := &StatusWriter{Source: src, Dyn: dyn, Mode: scaler.ModeDryRun, Log: zap.NewNop()}
	ctx := context.Background()
	patches := func() int {
		c := 0
		for _, a := range dyn.Actions() {
			if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
				c++
			}
		}
		return c
	}

	steady := func(int) int32 { return 2 }
	w.Record(tick(epoch, n, steady))
	w.writeOnce(ctx)
	if w.Writes() != 1 || patches() != 1 {
		t.Fatalf("first tick: %d writes (%d patches), want 1", w.Writes(), patches())
	}
	for i := 1; i <= 5; i++ {
		w.Record(tick(epoch.Add(time.Duration(i)*15*time.Second), n, steady))
		w.writeOnce(ctx)
	}
	if w.Writes() != 1 {
		t.Errorf("five quiet ticks wrote %d times in all, want only the first", w.Writes())
	}
	w.Record(tick(epoch.Add(2*time.Minute), n, func(i int) int32 { return map[bool]int32{true: 5, false: 2}[i == 7] }))
	w.writeOnce(ctx)
	if w.Writes() != 2 || patches() != 2 {
		t.Errorf("a tick changing one service: %d writes (%d patches), want 2", w.Writes(), patches())
	}

	got, err := dyn.Resource(v1alpha1.GroupVersionResource).Namespace("shop").Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := v1alpha1.FromUnstructured(got)
	if err != nil {
		t.Fatal(err)
	}
	st := sp.Status
	if len(st.Services) != n || st.ServiceCount != n || st.ObservedGeneration != 1 || st.Mode != "dry-run" {
		t.Fatalf("status: %d services, count %d, generation %d, mode %q", len(st.Services), st.ServiceCount, st.ObservedGeneration, st.Mode)
	}
	s7 := st.Services[7]
	if s7.Name != "svc-0007" || s7.Recommended == nil || *s7.Recommended != 5 || s7.Desired != nil || s7.LastChangeTime == nil || !s7.LastChangeTime.Time.Equal(epoch.Add(2*time.Minute)) {
		t.Errorf("svc-0007 status %+v", s7)
	}
	if st.LastAction != "svc-0007 2→5" || st.LastActionTime == nil {
		t.Errorf("last action %q at %v", st.LastAction, st.LastActionTime)
	}

	// Long reasons for the most services a ScalingPolicy may hold: the
	// status stays below the API server's object size limit.
	const many = 2000
	long := tick(epoch.Add(3*time.Minute), many, func(int) int32 { return 2 })
	for i := range long.Plan.Decisions {
		long.Plan.Decisions[i].Reason = strings.Repeat("a signal far above its target; ", 40)
	}
	w.Record(long)
	body, err := json.Marshal(w.build())
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 1<<20 {
		t.Errorf("status of %d services with long reasons is %d bytes, want under 1 MiB", many, len(body))
	}
	t.Logf("status of %d services with long reasons: %d bytes", many, len(body))
}

// Verifies the conditions a person reads in kubectl describe: a generation
// that does not compile keeps the last good one and says so in Ready and
// Degraded; unusable signals are named in SourcesHealthy; hand-offs and the
// budget show in Degraded and the counts.
func TestStatusConditions(t *testing.T) {
	u := bigPolicy(t, 3)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ScalingPolicyList"}, u)
	src := NewPolicySource(dyn, "shop", "p", nil, nil, nil, nil)
	src.take(u)
	bad := u.DeepCopy()
	bad.SetGeneration(2)
	_ = unstructured.SetNestedField(bad.Object, []any{"nosuch"}, "spec", "services", "svc-0000", "dependsOn")
	src.take(bad)
	if st := src.State(); st.InForce != 1 || st.Latest != 2 || st.Err == nil || len(src.Current().Services) != 3 {
		t.Fatalf("state %+v: want generation 1 in force, 2 refused", st)
	}

	w := &StatusWriter{Source: src, Dyn: dyn, Mode: scaler.ModeApply, Log: zap.NewNop()}
	tk := tick(epoch, 3, func(int) int32 { return 2 })
	tk.Plan.Decisions[0].Signals = []policy.SignalResult{{Name: "latency", Status: policy.StatusFailed}}
	tk.Plan.Decisions[1].LimitedBy = policy.LimitBudget
	tk.HandedOff = map[string]string{"svc-0002": "HorizontalPodAutoscaler svc-0002"}
	w.Record(tk)
	st := w.build()
	cond := func(typ string) (string, string, string) {
		for _, c := range st.Conditions {
			if c.Type == typ {
				return string(c.Status), c.Reason, c.Message
			}
		}
		return "", "", ""
	}
	for _, tc := range []struct{ typ, status, reason, msg string }{
		{v1alpha1.ConditionReady, "False", "InvalidSpec", "generation 1 stays in force"},
		{v1alpha1.ConditionSourcesHealthy, "False", "SignalsUnresolved", "svc-0000/latency failed"},
		{v1alpha1.ConditionDryRun, "False", "Apply", ""},
		{v1alpha1.ConditionDegraded, "True", "InvalidSpec", "held back by the budget: svc-0001"},
	} {
		s, r, m := cond(tc.typ)
		if s != tc.status || r != tc.reason || !strings.Contains(m, tc.msg) {
			t.Errorf("%s = %s %s %q, want %s %s containing %q", tc.typ, s, r, m, tc.status, tc.reason, tc.msg)
		}
	}
	if _, _, m := cond(v1alpha1.ConditionDegraded); !strings.Contains(m, "scaled by something else: svc-0002") || strings.Contains(m, "not found") {
		t.Errorf("Degraded message %q: want the hand-off, and no target missing", m)
	}

	if st.OverBudget != 1 || st.HandedOff != 1 || st.ObservedGeneration != 1 || st.Services[0].Desired == nil {
		t.Errorf("status %+v", st)
	}

	// A burst tick leaves handed-off and single-instance targets out of
	// its snapshot: they are not reported missing; a target really not
	// found is.
	burst := tick(epoch.Add(time.Second), 3, func(int) int32 { return 2 })
	burst.HandedOff = map[string]string{"svc-0002": "HorizontalPodAutoscaler svc-0002"}
	burst.Pinned = map[string]string{"svc-0001": ""}
	for _, name := range []string{"svc-0001", "svc-0002"} {
		burst.Snapshot.Services[name] = policy.ServiceObservation{}
	}
	delete(burst.Snapshot.Services, "svc-0000")
	w.Record(burst)
	st = w.build()
	if _, _, m := cond(v1alpha1.ConditionDegraded); !strings.Contains(m, "targets not found: svc-0000") || strings.Contains(m, "svc-0001") {
		t.Errorf("Degraded message %q: want svc-0000 missing, svc-0001 (single-instance) not", m)
	}
}

// Verifies that a replica that is not the leader writes no status, however
// often it is kicked, and that the leader writes once.
func TestOnlyTheLeaderWritesStatus(t *testing.T) {
	u := bigPolicy(t, 2)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ScalingPolicyList"}, u)
	src := NewPolicySource(dyn, "shop", "p", nil, nil, nil, nil)
	src.take(u)
	var leader atomic.Bool
	w := &StatusWriter{Source: src, Dyn: dyn, Mode: scaler.ModeDryRun, Log: zap.NewNop()}
	w.SetLeader(leader.Load)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	for i := range 5 {
		w.Record(tick(epoch.Add(time.Duration(i)*time.Second), 2, func(int) int32 { return 3 }))
		time.Sleep(10 * time.Millisecond)
	}
	if n := w.Writes(); n != 0 {
		t.Fatalf("a standby wrote the status %d times", n)
	}
	leader.Store(true)
	w.Kick()
	deadline := time.Now().Add(5 * time.Second)
	for w.Writes() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := w.Writes(); n != 1 {
		t.Errorf("the leader wrote %d times, want 1", n)
	}
}
