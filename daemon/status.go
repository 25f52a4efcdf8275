package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

// StatusWriter publishes each tick's decisions in the ScalingPolicy's
// status. Record only builds the status; one goroutine writes the newest,
// and only when it differs from what it last wrote, so there is at most one
// write a tick and none in a quiet one, whatever the number of services.
type StatusWriter struct {
	Source *PolicySource
	Dyn    dynamic.Interface
	Mode   scaler.Mode
	Log    *zap.Logger

	mu       sync.Mutex
	isLeader func() bool // nil: this replica writes
	last     *loop.Tick  // the last tick seen
	svc      map[string]serviceMemory
	action   string
	actAt    time.Time
	conds    []metav1.Condition
	written  []byte
	writes   int
	kick     chan struct{}
}

// serviceMemory is what a service's status keeps across ticks.
type serviceMemory struct {
	desired   int32
	changedAt time.Time
}

var _ loop.Recorder = (*StatusWriter)(nil)

// Record remembers the tick and wakes the writer.
func (w *StatusWriter) Record(t loop.Tick) {
	w.mu.Lock()
	w.last = &t
	w.remember(t)
	w.mu.Unlock()
	w.Kick()
}

// Kick asks the writer to compare and, when changed, write.
func (w *StatusWriter) Kick() {
	w.init()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *StatusWriter) init() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.kick == nil {
		w.kick = make(chan struct{}, 1)
		w.svc = map[string]serviceMemory{}
	}
}

// remember updates each service's last change and the last action.
func (w *StatusWriter) remember(t loop.Tick) {
	if w.svc == nil {
		w.svc = map[string]serviceMemory{}
	}
	var moved []string
	for _, d := range t.Plan.Decisions {
		m, seen := w.svc[d.Service]
		if !seen || m.desired != d.Desired {
			if seen || d.Desired != d.Current {
				m.changedAt = t.Time
			}
			if d.Desired != d.Current && (!seen || m.desired != d.Desired) {
				moved = append(moved, fmt.Sprintf("%s %d→%d", d.Service, d.Current, d.Desired))
			}
			m.desired = d.Desired
		}
		w.svc[d.Service] = m
	}
	if len(moved) > 0 {
		w.action, w.actAt = joinMax(moved, 3), t.Time
	}
}

// SetLeader makes only the leader write, so two replicas never fight over
// the status. Before it is called (while no generation compiled and no
// election runs) every replica writes the same status.
func (w *StatusWriter) SetLeader(isLeader func() bool) {
	w.mu.Lock()
	w.isLeader = isLeader
	w.mu.Unlock()
}

// Run writes until ctx ends.
func (w *StatusWriter) Run(ctx context.Context) {
	w.init()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		w.mu.Lock()
		leader := w.isLeader
		w.mu.Unlock()
		if leader != nil && !leader() {
			continue
		}
		w.writeOnce(ctx)
	}
}

// Forget drops what the writer last wrote, so the next kick writes: the
// resource was replaced, or its status may no longer be ours.
func (w *StatusWriter) Forget() {
	w.mu.Lock()
	w.written = nil
	w.mu.Unlock()
}

// Writes counts the status writes made, for tests and benchmarks.
func (w *StatusWriter) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

func (w *StatusWriter) writeOnce(ctx context.Context) {
	if w.Source.State().Deleted {
		return // nothing to write to until it is created again
	}
	st := w.build()
	body, err := json.Marshal(st)
	if err != nil {
		w.Log.Error("status not encoded", zap.Error(err))
		return
	}
	w.mu.Lock()
	same := bytes.Equal(body, w.written)
	w.mu.Unlock()
	if same {
		return
	}
	patch, err := v1alpha1.StatusPatch(st)
	if err != nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ri := w.Dyn.Resource(v1alpha1.GroupVersionResource).Namespace(w.Source.Namespace)
	if _, err := ri.Patch(wctx, w.Source.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "elmascale"}, "status"); err != nil {
		w.Log.Warn("ScalingPolicy status not written; the next tick tries again", zap.Error(err))
		return
	}
	w.mu.Lock()
	w.written = body
	w.writes++
	w.mu.Unlock()
}

// build is the status from the last tick and the source's state.
func (w *StatusWriter) build() *v1alpha1.ScalingPolicyStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	src := w.Source.State()
	st := &v1alpha1.ScalingPolicyStatus{ObservedGeneration: src.InForce, Mode: string(w.Mode), LastAction: w.action}
	if !w.actAt.IsZero() {
		at := metav1.NewTime(w.actAt)
		st.LastActionTime = &at
	}
	now := time.Now()
	var t loop.Tick
	if w.last != nil {
		t = *w.last
		now = t.Time
	}
	if cfg := w.Source.Current(); cfg != nil {
		st.ServiceCount = int32(len(cfg.Services))
	}
	var bottlenecks, unresolved, missing, overBudget, handedOff []string
	reasonMax := reasonBudget(len(t.Plan.Decisions))
	for _, d := range t.Plan.Decisions {
		ss := v1alpha1.ServiceStatus{Name: d.Service, Current: d.Current, Ready: d.Ready, Bottleneck: d.Bottleneck,
			LimitedBy: string(d.LimitedBy), HandedOff: t.HandedOff[d.Service], Reason: truncate(d.Reason, reasonMax)}
		desired := d.Desired
		if w.Mode == scaler.ModeDryRun {
			ss.Recommended = &desired
		} else {
			ss.Desired = &desired
		}
		if m := w.svc[d.Service]; !m.changedAt.IsZero() {
			at := metav1.NewTime(m.changedAt)
			ss.LastChangeTime = &at
		}
		st.Services = append(st.Services, ss)
		if d.Bottleneck {
			bottlenecks = append(bottlenecks, d.Service)
		}
		if d.LimitedBy == policy.LimitBudget {
			overBudget = append(overBudget, d.Service)
		}
		if ss.HandedOff != "" {
			handedOff = append(handedOff, d.Service)
		}
		for _, sig := range d.Signals {
			if sig.Status != policy.StatusOK {
				unresolved = append(unresolved, fmt.Sprintf("%s/%s %s", d.Service, sig.Name, sig.Status))
			}
		}
		// A burst tick marks handed-off and single-instance targets as not
		// found (they are the regular tick's alone); they are not missing.
		_, pinned := t.Pinned[d.Service]
		if obs, ok := t.Snapshot.Services[d.Service]; (!ok || !obs.Found) && ss.HandedOff == "" && !pinned {
			missing = append(missing, d.Service)
		}
	}
	slices.SortFunc(st.Services, func(a, b v1alpha1.ServiceStatus) int { return strings.Compare(a.Name, b.Name) })
	st.Bottleneck = joinMax(bottlenecks, 5)
	st.OverBudget, st.HandedOff = int32(len(overBudget)), int32(len(handedOff))

	ts := metav1.NewTime(now)
	set := func(typ string, ok bool, reason, msg string) {
		c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: reason, Message: truncate(msg, 1000), ObservedGeneration: src.Latest, LastTransitionTime: ts}
		if ok {
			c.Status = metav1.ConditionTrue
		}
		apimeta.SetStatusCondition(&w.conds, c)
	}
	switch {
	case src.Err != nil:
		set(v1alpha1.ConditionReady, false, "InvalidSpec", invalidMessage(src.Latest, src.InForce, src.Err))
	case src.Deleted:
		set(v1alpha1.ConditionReady, false, "Deleted", "the resource was deleted; its last config stays in force")
	case w.last == nil:
		set(v1alpha1.ConditionReady, false, "WaitingForFirstTick", fmt.Sprintf("generation %d compiled; no tick has run yet", src.InForce))
	case t.Err != nil && len(t.Plan.Decisions) == 0:
		set(v1alpha1.ConditionReady, false, "TickFailed", t.Err.Error())
	default:
		set(v1alpha1.ConditionReady, true, "PolicyInForce", fmt.Sprintf("generation %d in force: %d services", src.InForce, st.ServiceCount))
	}
	switch {
	case w.last == nil:
		set(v1alpha1.ConditionSourcesHealthy, false, "NoTickYet", "no signal has been collected yet")
	case t.StepErrors[loop.StepCollect] != nil && len(unresolved) > 0:
		set(v1alpha1.ConditionSourcesHealthy, false, "CollectFailed", fmt.Sprintf("%s; unresolved: %s", t.StepErrors[loop.StepCollect], joinMax(unresolved, 20)))
	case len(unresolved) > 0:
		set(v1alpha1.ConditionSourcesHealthy, false, "SignalsUnresolved", fmt.Sprintf("%d signals not usable: %s", len(unresolved), joinMax(unresolved, 20)))
	default:
		set(v1alpha1.ConditionSourcesHealthy, true, "AllSignalsResolved", "every signal of every service was usable in the last tick")
	}
	if w.Mode == scaler.ModeDryRun {
		set(v1alpha1.ConditionDryRun, true, "DryRun", "decisions are recommendations only; no replicas are changed")
	} else {
		set(v1alpha1.ConditionDryRun, false, "Apply", "decisions change replicas")
	}
	var degraded []string
	reason := "AsExpected"
	add := func(r, msg string) {
		if reason == "AsExpected" {
			reason = r
		}
		degraded = append(degraded, msg)
	}
	if src.Err != nil {
		add("InvalidSpec", fmt.Sprintf("generation %d does not compile", src.Latest))
	}
	if len(missing) > 0 {
		add("TargetsMissing", "targets not found: "+joinMax(missing, 10))
	}
	if len(handedOff) > 0 {
		add("HandedOff", "scaled by something else: "+joinMax(handedOff, 10))
	}
	if len(overBudget) > 0 {
		add("OverBudget", "held back by the budget: "+joinMax(overBudget, 10))
	}
	if len(degraded) > 0 {
		set(v1alpha1.ConditionDegraded, true, reason, strings.Join(degraded, "; "))
	} else {
		set(v1alpha1.ConditionDegraded, false, reason, "every service is scaled by elmascale within its bounds and the budget")
	}
	st.Conditions = slices.Clone(w.conds)
	return st
}

// reasonBudget is how long each service's reason may be in a status of n
// services: the reasons together stay within 512 KiB, so the status of
// the 2,000 services a ScalingPolicy may hold stays under 1 MiB, inside
// the API server's object size limit (etcd's 1.5 MiB), while a reason
// keeps at least its first 120 bytes and at most 1,000 (the schema's
// limit is 1,024).
func reasonBudget(n int) int {
	if n == 0 {
		return 1000
	}
	return min(max(512<<10/n, 120), 1000)
}

// joinMax joins up to n names and says how many more there are.
func joinMax(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
