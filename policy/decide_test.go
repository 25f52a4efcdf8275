package policy

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// chain builds main → processor → worker: main and processor have latency
// and CPU signals, worker a queue.
func chain() Spec {
	mainSvc := service("main", 2, 10, cpuSignal("cpu", 70), latencySignal("latency", 800*time.Millisecond))
	mainSvc.DependsOn = []string{"processor", "auth"}
	proc := service("processor", 2, 10, cpuSignal("cpu", 70), latencySignal("latency", 500*time.Millisecond))
	proc.DependsOn = []string{"worker"}
	worker := service("worker", 2, 20, queueSignal("queue", time.Minute, 4))
	auth := service("auth", 2, 6, cpuSignal("cpu", 70))
	return Spec{Services: []ServiceSpec{mainSvc, proc, worker, auth}}
}

type load struct {
	mainLatency, procLatency float64
	mainCPU, procCPU         int64
	backlog                  float64
}

func chainSnapshot(l load) Snapshot {
	return Snapshot{Time: anyTime, Services: map[string]ServiceObservation{
		"main":      observed(2, map[string]Observation{"cpu": podsObs(runningPods(2, l.mainCPU, 1000)), "latency": ok(l.mainLatency)}),
		"processor": observed(2, map[string]Observation{"cpu": podsObs(runningPods(2, l.procCPU, 1000)), "latency": ok(l.procLatency)}),
		"worker":    observed(2, map[string]Observation{"queue": queueObs(QueueObservation{Backlog: l.backlog, ArrivalRate: 6, CompletionRate: 6})}),
		"auth":      observed(2, map[string]Observation{"cpu": podsObs(runningPods(2, 500, 1000))}),
	}}
}

// Verifies that a latency breach explained by a saturated dependency scales
// the deepest saturated dependency and not the symptoms.
func TestAttributionScalesTheDeepestSaturatedDependency(t *testing.T) {
	spec := chain()
	plan, _ := Decide(spec, chainSnapshot(load{mainLatency: 2.4, procLatency: 1.5, mainCPU: 500, procCPU: 500, backlog: 900}), State{}, anyTime)

	got := map[string]int32{}
	bottlenecks := []string{}
	for _, d := range plan.Decisions {
		got[d.Service] = d.Desired
		if d.Bottleneck {
			bottlenecks = append(bottlenecks, d.Service)
		}
	}
	want := map[string]int32{"main": 2, "processor": 2, "worker": 6, "auth": 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("desired replicas (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"worker"}, bottlenecks); diff != "" {
		t.Errorf("bottlenecks (-want,+got):\n%s", diff)
	}
	w, _ := plan.Decision("worker")
	if diff := cmp.Diff([]string{"main", "processor"}, w.Explains); diff != "" {
		t.Errorf("worker explains (-want,+got):\n%s", diff)
	}
	m, _ := plan.Decision("main")
	if !strings.Contains(m.Reason, "attributed to worker") {
		t.Errorf("main's reason should name worker: %q", m.Reason)
	}
	for _, s := range m.Signals {
		if s.Kind == KindLatency && (!s.Breach || len(s.AttributedTo) != 1 || s.AttributedTo[0] != "worker") {
			t.Errorf("main latency signal: %+v, want a breach attributed to worker", s)
		}
	}
}

// Verifies that a latency breach with healthy dependencies scales the
// service itself, and that a symptom whose own CPU is saturated still scales.
func TestAttributionFallsBackToTheServiceItself(t *testing.T) {
	spec := chain()
	plan, _ := Decide(spec, chainSnapshot(load{mainLatency: 1.6, procLatency: 0.2, mainCPU: 500, procCPU: 500, backlog: 0}), State{}, anyTime)
	m, _ := plan.Decision("main")
	if !m.Bottleneck || m.Desired != 4 {
		t.Errorf("main: bottleneck=%v desired=%d, want its own bottleneck at 4 (%s)", m.Bottleneck, m.Desired, m.Reason)
	}

	plan, _ = Decide(spec, chainSnapshot(load{mainLatency: 2.4, procLatency: 1.5, mainCPU: 980, procCPU: 500, backlog: 900}), State{}, anyTime)
	m, _ = plan.Decision("main")
	if m.Desired != 3 || !m.Bottleneck {
		t.Errorf("main with saturated CPU: desired %d bottleneck=%v, want 3 from CPU (%s)", m.Desired, m.Bottleneck, m.Reason)
	}
}

// Verifies the autoscaling/v2 default behavior over time: an immediate
// scale-up limited to max(+100%, +4 pods) per 15s, a scale-down only after
// the 5 minute stabilization window.
func TestBehaviorOverTime(t *testing.T) {
	spec := Spec{Services: []ServiceSpec{service("api", 1, 50, SignalSpec{Name: "rps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: 10}})}}
	state := State{}
	current := int32(2)
	step := func(at time.Duration, total float64) Decision {
		t.Helper()
		now := anyTime.Add(at)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"api": {Found: true, CurrentReplicas: current, ReadyReplicas: current,
			Signals: map[string]Observation{"rps": {Status: StatusOK, Time: now, Value: total}}}}}
		var plan Plan
		plan, state = Decide(spec, snap, state, now)
		d := plan.Decisions[0]
		current = d.Desired // the scaler applies it
		return d
	}
	type want struct {
		desired int32
		limit   Limit
	}
	steps := []struct {
		at    time.Duration
		total float64
		want  want
	}{
		{0, 300, want{6, LimitRate}},                 // wants 30: +4 pods beats +100% of 2
		{15 * time.Second, 300, want{12, LimitRate}}, // +100% of 6
		{30 * time.Second, 300, want{24, LimitRate}},
		{45 * time.Second, 300, want{30, LimitNone}},
		{60 * time.Second, 100, want{30, LimitStabilization}}, // load falls: wants 10
		{5*time.Minute + 44*time.Second, 100, want{30, LimitStabilization}},
		{6*time.Minute + 1*time.Second, 100, want{10, LimitNone}}, // window passed
	}
	for _, s := range steps {
		d := step(s.at, s.total)
		if d.Desired != s.want.desired || d.LimitedBy != s.want.limit {
			t.Fatalf("at %s: desired %d limited by %q, want %d by %q (%s)", s.at, d.Desired, d.LimitedBy, s.want.desired, s.want.limit, d.Reason)
		}
	}
}

// Verifies that rate policies count only changes that were applied: in
// dry-run the current count never moves, so each recommendation is limited
// from the same starting point instead of shrinking.
func TestRateCountsOnlyAppliedChanges(t *testing.T) {
	spec := Spec{Services: []ServiceSpec{service("api", 1, 50, SignalSpec{Name: "rps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: 10}})}}
	state := State{}
	for i := range 4 {
		now := anyTime.Add(time.Duration(i) * 5 * time.Second)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"api": observed(2, map[string]Observation{"rps": {Status: StatusOK, Time: now, Value: 300}})}}
		var plan Plan
		plan, state = Decide(spec, snap, state, now)
		if got := plan.Decisions[0].Desired; got != 6 {
			t.Fatalf("tick %d: desired %d, want 6 every tick while nothing is applied", i, got)
		}
	}
	if n := len(state.Services["api"].Events); n != 0 {
		t.Errorf("dry-run recorded %d scale events, want 0", n)
	}
}

// Verifies rate policy selection: Min picks the smallest change, Disabled
// forbids the direction.
func TestSelectPolicy(t *testing.T) {
	sig := SignalSpec{Name: "rps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: 10}}
	cases := []struct {
		name  string
		edit  func(*Behavior)
		total float64
		want  int32
	}{
		{"Max picks the larger change", func(b *Behavior) {}, 1000, 8},
		{"Min picks the smaller change", func(b *Behavior) { b.ScaleUp.SelectPolicy = SelectMin }, 1000, 7},
		{"Disabled forbids scale-up", func(b *Behavior) { b.ScaleUp.SelectPolicy = SelectDisabled }, 1000, 4},
		{"Disabled forbids scale-down", func(b *Behavior) {
			b.ScaleDown.SelectPolicy = SelectDisabled
			b.ScaleDown.StabilizationWindow = 0
		}, 10, 4},
		{"Pods scale-down policy", func(b *Behavior) {
			b.ScaleDown = ScalingRules{SelectPolicy: SelectMax, Policies: []RatePolicy{{Type: RatePods, Value: 1, Period: time.Minute}}}
		}, 10, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := service("api", 1, 100, sig)
			s.Behavior.ScaleUp.Policies = []RatePolicy{{Type: RatePercent, Value: 100, Period: 15 * time.Second}, {Type: RatePods, Value: 3, Period: 15 * time.Second}}
			tc.edit(&s.Behavior)
			d := decideOne(t, s, observed(4, map[string]Observation{"rps": ok(tc.total)}))
			if d.Desired != tc.want {
				t.Fatalf("desired %d, want %d (%s)", d.Desired, tc.want, d.Reason)
			}
		})
	}
}

// Verifies that pinned single-instance services stay at one, are brought
// back to one, and are reported as unrelievable bottlenecks.
func TestPinnedServices(t *testing.T) {
	s := service("notifier", 1, 1, cpuSignal("cpu", 70))
	s.Pinned = true
	d := decideOne(t, s, observed(1, map[string]Observation{"cpu": podsObs(runningPods(1, 990, 1000))}))
	if d.Desired != 1 || !d.Bottleneck || d.LimitedBy != LimitPinned || !strings.Contains(d.Reason, "cannot be relieved") {
		t.Errorf("saturated notifier: %+v", d)
	}
	d = decideOne(t, s, observed(3, map[string]Observation{"cpu": podsObs(runningPods(3, 100, 1000))}))
	if d.Desired != 1 {
		t.Errorf("notifier found at 3: desired %d, want 1", d.Desired)
	}
	// Even a spec that (wrongly) allows more keeps it at one.
	s.MaxReplicas = 5
	d = decideOne(t, s, observed(1, map[string]Observation{"cpu": podsObs(runningPods(1, 990, 1000))}))
	if d.Desired != 1 {
		t.Errorf("pinned with max 5: desired %d, want 1", d.Desired)
	}
}

// Verifies the cluster budget gives scarce replicas to the bottleneck first,
// then by pressure, and never forces a scale-down.
func TestBudget(t *testing.T) {
	spec := chain()
	spec.Services[2].Behavior.ScaleUp.Policies = nil // let worker jump
	snap := chainSnapshot(load{mainLatency: 2.4, procLatency: 1.5, mainCPU: 500, procCPU: 1000, backlog: 900})
	spec.Budget.MaxTotalReplicas = 12
	plan, _ := Decide(spec, snap, State{}, anyTime)
	got := map[string]int32{}
	for _, d := range plan.Decisions {
		got[d.Service] = d.Desired
	}
	// worker wants 9 and processor 3 (CPU 142%); base is 8 (2 each), room 4:
	// the bottleneck with more pressure, worker, takes it all.
	want := map[string]int32{"main": 2, "processor": 2, "worker": 6, "auth": 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("desired with budget 12 (-want,+got):\n%s", diff)
	}
	if w, _ := plan.Decision("worker"); w.LimitedBy != LimitBudget {
		t.Errorf("worker limited by %q, want budget", w.LimitedBy)
	}
	if plan.TotalDesired > 12 {
		t.Errorf("total %d exceeds the budget", plan.TotalDesired)
	}

	// A budget smaller than what already runs trims nothing that runs.
	spec.Budget.MaxTotalReplicas = 3
	plan, _ = Decide(spec, snap, State{}, anyTime)
	for _, d := range plan.Decisions {
		if d.Desired != 2 {
			t.Errorf("%s: desired %d, want 2 (budget never forces a scale-down)", d.Service, d.Desired)
		}
	}
}

// Verifies the safety rules: bad data never scales down; all bad holds or
// falls back upwards; a missing target holds.
func TestSafety(t *testing.T) {
	two := service("api", 1, 10, cpuSignal("cpu", 70), latencySignal("latency", time.Second))
	low := podsObs(runningPods(5, 50, 1000))
	cases := []struct {
		name  string
		spec  ServiceSpec
		obs   ServiceObservation
		want  int32
		limit Limit
	}{
		{"NaN latency blocks a CPU scale-down", two, observed(5, map[string]Observation{"cpu": low, "latency": ok(math.NaN())}), 5, LimitHold},
		{"stale latency blocks a CPU scale-down", two, observed(5, map[string]Observation{"cpu": low, "latency": {Status: StatusOK, Time: anyTime.Add(-time.Hour), Value: 0.1}}), 5, LimitHold},
		{"failed source allows a scale-up from a good one", two, observed(2, map[string]Observation{"cpu": podsObs(runningPods(2, 990, 1000)), "latency": {Status: StatusFailed}}), 3, LimitNone},
		{"everything missing holds", two, observed(5, nil), 5, LimitHold},
		{"everything missing falls back upwards", func() ServiceSpec { s := two; s.FallbackReplicas = 7; return s }(), observed(5, nil), 7, LimitFallback},
		{"fallback never lowers", func() ServiceSpec { s := two; s.FallbackReplicas = 3; return s }(), observed(5, nil), 5, LimitHold},
		{"target not found holds", two, ServiceObservation{Found: false, CurrentReplicas: 4}, 4, LimitHold},
		{"bounds still apply when current is out of range", two, observed(14, nil), 10, LimitMax},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decideOne(t, tc.spec, tc.obs)
			if d.Desired != tc.want || d.LimitedBy != tc.limit {
				t.Fatalf("desired %d limited by %q, want %d by %q (%s)", d.Desired, d.LimitedBy, tc.want, tc.limit, d.Reason)
			}
			if d.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

// Verifies Decide leaves the state it was given untouched.
func TestDecideDoesNotModifyPreviousState(t *testing.T) {
	spec := chain()
	_, s1 := Decide(spec, chainSnapshot(load{mainLatency: 0.1, procLatency: 0.1, mainCPU: 100, procCPU: 100}), State{}, anyTime)
	before := cloneState(s1)
	Decide(spec, chainSnapshot(load{mainLatency: 3, procLatency: 3, mainCPU: 990, procCPU: 990, backlog: 5000}), s1, anyTime.Add(15*time.Second))
	if diff := cmp.Diff(before.Services, s1.Services); diff != "" {
		t.Errorf("state changed by Decide (-before,+after):\n%s", diff)
	}
}

func cloneState(s State) State {
	out := State{Services: map[string]ServiceState{}}
	for k, v := range s.Services {
		c := v
		c.Recommendations = append([]Recommendation(nil), v.Recommendations...)
		c.Events = append([]ScaleEvent(nil), v.Events...)
		if v.Pending != nil {
			p := *v.Pending
			c.Pending = &p
		}
		out.Services[k] = c
	}
	return out
}

// Verifies a root reachable along several paths is named once, and that
// roots from both branches are found (a nested walk must not overwrite the
// caller's dedupe marks).
func TestAttributionDedupesRootsAcrossPaths(t *testing.T) {
	lat := func(name string, deps ...string) ServiceSpec {
		s := service(name, 1, 10, latencySignal("latency", time.Second))
		s.DependsOn = deps
		return s
	}
	cpu := func(name string) ServiceSpec { return service(name, 1, 10, cpuSignal("cpu", 50)) }
	spec := Spec{Services: []ServiceSpec{
		lat("main", "processor", "docflow"),
		lat("docflow", "processor", "collector"),
		lat("processor", "worker"),
		cpu("worker"), cpu("collector"),
	}}
	slow := map[string]Observation{"latency": ok(3)}
	hotCPU := map[string]Observation{"cpu": podsObs(runningPods(2, 900, 1000))}
	snap := Snapshot{Time: anyTime, Services: map[string]ServiceObservation{
		"main": observed(2, slow), "docflow": observed(2, slow), "processor": observed(2, slow),
		"worker": observed(2, hotCPU), "collector": observed(2, hotCPU),
	}}
	plan, _ := Decide(spec, snap, State{}, anyTime)
	m, _ := plan.Decision("main")
	var got []string
	for _, s := range m.Signals {
		got = s.AttributedTo
	}
	if diff := cmp.Diff([]string{"worker", "collector"}, got); diff != "" {
		t.Errorf("main attributed to (-want,+got):\n%s", diff)
	}
	for _, name := range []string{"main", "docflow", "processor"} {
		if d, _ := plan.Decision(name); d.Desired != 2 || d.Bottleneck {
			t.Errorf("%s: desired %d bottleneck=%v, want held as a symptom", name, d.Desired, d.Bottleneck)
		}
	}
}

// Verifies a signal marked as a symptom (in-flight at a caller) is
// attributed to a saturated dependency like latency is.
func TestSymptomSignalIsAttributed(t *testing.T) {
	spec := chain()
	inflight := SignalSpec{Name: "in-flight", Kind: KindPerReplica, Symptom: true, PerReplica: &PerReplicaSpec{TargetPerReplica: 100}}
	spec.Services[0].Signals = append(spec.Services[0].Signals, inflight)
	snap := chainSnapshot(load{mainLatency: 0.5, procLatency: 1.5, mainCPU: 500, procCPU: 500, backlog: 900})
	snap.Services["main"].Signals["in-flight"] = ok(460)
	plan, _ := Decide(spec, snap, State{}, anyTime)
	if m, _ := plan.Decision("main"); m.Desired != 2 || !strings.Contains(m.Reason, "attributed to worker") {
		t.Errorf("main: desired %d (%s), want the in-flight breach attributed to worker", m.Desired, m.Reason)
	}
	// Without the mark it is load of main's own and scales main.
	spec.Services[0].Signals[2].Symptom = false
	plan, _ = Decide(spec, snap, State{}, anyTime)
	if m, _ := plan.Decision("main"); m.Desired <= 2 {
		t.Errorf("unmarked in-flight should scale main, desired %d", m.Desired)
	}
}

// Verifies a bottleneck keeps explaining its callers' breaches for the
// attribution memory after its own signals recover, and not after.
func TestAttributionMemory(t *testing.T) {
	spec := chain()
	spec.AttributionMemory = 2 * time.Minute
	_, state := Decide(spec, chainSnapshot(load{mainLatency: 2.4, procLatency: 1.5, mainCPU: 500, procCPU: 500, backlog: 900}), State{}, anyTime)
	// worker has caught up; the callers' latency windows still hold the slow requests.
	recovered := load{mainLatency: 2.4, procLatency: 1.5, mainCPU: 500, procCPU: 500, backlog: 0}

	at := anyTime.Add(time.Minute)
	snap := chainSnapshot(recovered)
	snap.Services["worker"] = observed(2, map[string]Observation{"queue": queueObs(QueueObservation{ArrivalRate: 2, CompletionRate: 2})})
	snap.Time = at
	plan, _ := Decide(spec, snap, state, at)
	m, _ := plan.Decision("main")
	w, _ := plan.Decision("worker")
	if m.Desired != 2 || !strings.Contains(m.Reason, "attributed to worker") || !strings.Contains(w.Reason, "recent bottleneck") {
		t.Errorf("1m after: main %d (%s); worker: %s", m.Desired, m.Reason, w.Reason)
	}

	at = anyTime.Add(3 * time.Minute)
	snap.Time = at
	plan, _ = Decide(spec, snap, state, at)
	if p, _ := plan.Decision("processor"); p.Desired <= 2 || !p.Bottleneck {
		t.Errorf("3m after, past the memory: processor %d bottleneck=%v (%s), want it scaled as the bottleneck now", p.Desired, p.Bottleneck, p.Reason)
	}
}

// Verifies a queue pool remembers the capacity it measured while saturated
// and does not fall back to a higher configured guess once it keeps up,
// which would shrink it straight back into saturation.
func TestQueueLearnsCapacity(t *testing.T) {
	spec := Spec{Services: []ServiceSpec{service("worker", 1, 20, queueSignal("q", time.Minute, 4))}}
	step := func(at time.Duration, current int32, q QueueObservation, st State) (Decision, State) {
		now := anyTime.Add(at)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"worker": {Found: true, CurrentReplicas: current, ReadyReplicas: current,
			Signals: map[string]Observation{"q": {Status: StatusOK, Time: now, Queue: &q}}}}}
		plan, next := Decide(spec, snap, st, now)
		return plan.Decisions[0], next
	}
	// Saturated: 200 waiting, 2 replicas complete 2/s: 1/s each, not the configured 4.
	_, st := step(0, 2, QueueObservation{Backlog: 200, ArrivalRate: 2, CompletionRate: 2}, State{})
	if got := st.Services["worker"].QueueCapacity["q"]; got != 1 {
		t.Fatalf("learned capacity %v, want 1", got)
	}
	// Keeping up at 4 replicas: the learned 1/s says 4 are needed (2/0.8 → 3);
	// the configured 4/s would have said 1.
	d, st := step(5*time.Minute, 4, QueueObservation{ArrivalRate: 2, CompletionRate: 2}, st)
	if d.Proposal != 3 || !strings.Contains(d.Reason, "learned") {
		t.Errorf("proposal %d (%s), want 3 from the learned capacity", d.Proposal, d.Reason)
	}
	if got := st.Services["worker"].QueueCapacity["q"]; got != 1 {
		t.Errorf("capacity forgotten: %v", got)
	}
}

// Verifies latency under its SLO does not hold back a scale-down that a
// saturation signal sizes, while a latency-only service still walks down
// one replica at a time.
func TestLatencyLeavesScaleDownToSaturationSignals(t *testing.T) {
	s := service("api", 1, 20, cpuSignal("cpu", 50), latencySignal("latency", time.Second))
	s.Behavior.ScaleDown.StabilizationWindow = 0
	d := decideOne(t, s, observed(8, map[string]Observation{"cpu": podsObs(runningPods(8, 100, 1000)), "latency": ok(0.1)}))
	if d.Desired != 2 {
		t.Errorf("CPU at 10%% of 8 pods: desired %d (%s), want 2 from CPU", d.Desired, d.Reason)
	}
	only := service("api", 1, 20, latencySignal("latency", time.Second))
	only.Behavior.ScaleDown.StabilizationWindow = 0
	if d := decideOne(t, only, observed(8, map[string]Observation{"latency": ok(0.1)})); d.Desired != 7 {
		t.Errorf("latency-only: desired %d, want 7", d.Desired)
	}
}

// Verifies that a rate policy counts from the replicas at the start of its
// period, which changes in both directions move: a scale-down inside the
// period leaves room to scale back up, as in the HPA controller.
func TestRateCountsChangesInBothDirections(t *testing.T) {
	s := service("api", 1, 100, SignalSpec{Name: "rps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: 10}})
	s.Behavior.ScaleUp.Policies = []RatePolicy{{Type: RatePods, Value: 2, Period: time.Minute}}
	s.Behavior.ScaleDown = ScalingRules{SelectPolicy: SelectMax, Policies: []RatePolicy{{Type: RatePods, Value: 4, Period: time.Minute}}}
	spec := Spec{Services: []ServiceSpec{s}}
	state, current := State{}, int32(10)
	steps := []struct {
		at     time.Duration
		total  float64
		want   int32
		reason ScalingLimitedReason
	}{
		{0, 60, 6, ReasonDesiredWithinRange},                   // −4, as many as the minute allows
		{15 * time.Second, 200, 12, ReasonScaleUpLimit},        // the minute started at 10: +2 from there
		{30 * time.Second, 200, 12, ReasonScaleUpLimit},        // 12 − 6 + 4 = 10 at the start: nothing more
		{61 * time.Second, 200, 12, ReasonScaleUpLimit},        // the −4 left the minute; the +6 has not
		{76 * time.Second, 200, 14, ReasonScaleUpLimit},        // both left it
		{91 * time.Second, 30, 8, ReasonScaleDownLimit},        // the minute started at 12 (+2 at 76s): −4 from there
		{106 * time.Second, 200, 14, ReasonScaleUpLimit},       // 8 − 2 + 6 = 12 at the start: +2 from there
		{121 * time.Second, 140, 14, ReasonDesiredWithinRange}, // wants what runs
	}
	for _, st := range steps {
		now := anyTime.Add(st.at)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"api": observed(current, map[string]Observation{"rps": {Status: StatusOK, Time: now, Value: st.total}})}}
		var plan Plan
		plan, state = Decide(spec, snap, state, now)
		d := plan.Decisions[0]
		if d.Desired != st.want || d.ScalingLimited != st.reason {
			t.Fatalf("at %s: desired %d (%s), want %d (%s): %s", st.at, d.Desired, d.ScalingLimited, st.want, st.reason, d.Reason)
		}
		current = d.Desired
	}
}

// Verifies the legacy behavior of an HPA without spec.behavior: a
// scale-up is capped at max(2×current, 4) on every tick, with no rate
// memory and no scale-up stabilization; a scale-down waits for the highest
// recommendation of the last 5 minutes; no scale events are kept.
func TestLegacyBehavior(t *testing.T) {
	s := service("api", 1, 100, SignalSpec{Name: "rps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: 10}})
	s.Behavior = LegacyBehavior()
	spec := Spec{Services: []ServiceSpec{s}}
	state, current := State{}, int32(2)
	steps := []struct {
		at     time.Duration
		total  float64
		want   int32
		limit  Limit
		reason ScalingLimitedReason
	}{
		{0, 300, 4, LimitRate, ReasonScaleUpLimit}, // max(2×2, 4)
		{15 * time.Second, 300, 8, LimitRate, ReasonScaleUpLimit},
		{30 * time.Second, 300, 16, LimitRate, ReasonScaleUpLimit},
		{45 * time.Second, 300, 30, LimitNone, ReasonDesiredWithinRange},
		{60 * time.Second, 100, 30, LimitStabilization, ReasonDesiredWithinRange},
		{5*time.Minute + 45*time.Second, 100, 30, LimitStabilization, ReasonDesiredWithinRange}, // 45s's 30 is exactly 5 minutes old: still in
		{6*time.Minute + 1*time.Second, 100, 10, LimitNone, ReasonDesiredWithinRange},
		{6*time.Minute + 16*time.Second, 250, 20, LimitRate, ReasonScaleUpLimit}, // no rate memory of the scale-down: only the cap
	}
	for _, st := range steps {
		now := anyTime.Add(st.at)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"api": observed(current, map[string]Observation{"rps": {Status: StatusOK, Time: now, Value: st.total}})}}
		var plan Plan
		plan, state = Decide(spec, snap, state, now)
		d := plan.Decisions[0]
		if d.Desired != st.want || d.LimitedBy != st.limit || d.ScalingLimited != st.reason {
			t.Fatalf("at %s: desired %d by %q (%s), want %d by %q (%s): %s", st.at, d.Desired, d.LimitedBy, d.ScalingLimited, st.want, st.limit, st.reason, d.Reason)
		}
		if st.at == 0 && !strings.Contains(d.Reason, "capped at max(2×2, 4)") {
			t.Errorf("reason %q should name the legacy cap", d.Reason)
		}
		if n := len(state.Services["api"].Events); n != 0 {
			t.Fatalf("at %s: %d scale events kept, want none", st.at, n)
		}
		current = d.Desired
	}
}

// Verifies per-direction tolerances: behavior.scaleUp.tolerance and
// behavior.scaleDown.tolerance replace the behavior's for their direction,
// and a signal's own tolerance replaces both.
func TestPerDirectionTolerance(t *testing.T) {
	tol := func(v float64) *float64 { return &v }
	cases := []struct {
		name           string
		up, down       *float64
		signal         float64
		pods           int
		usage, current int32
		want           int32
	}{
		{name: "108% is outside a 5% scale-up tolerance", up: tol(0.05), pods: 4, usage: 540, want: 5},
		{name: "108% is inside the default 10%", pods: 4, usage: 540, want: 4},
		{name: "80% is outside the default 10%", pods: 8, usage: 400, want: 7},
		{name: "80% is inside a 25% scale-down tolerance", down: tol(0.25), pods: 8, usage: 400, want: 8},
		{name: "the scale-down tolerance leaves scale-ups alone", down: tol(0.25), pods: 4, usage: 600, want: 5},
		{name: "a signal's tolerance replaces both", up: tol(0.05), signal: 0.3, pods: 4, usage: 540, want: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig := cpuSignal("cpu", 50)
			sig.Tolerance = tc.signal
			s := service("api", 1, 20, sig)
			s.Behavior.ScaleUp.Tolerance, s.Behavior.ScaleDown.Tolerance = tc.up, tc.down
			s.Behavior.ScaleDown.StabilizationWindow = 0
			d := decideOne(t, s, observed(int32(tc.pods), map[string]Observation{"cpu": podsObs(runningPods(tc.pods, int64(tc.usage), 1000))}))
			if d.Desired != tc.want {
				t.Fatalf("desired %d, want %d (%s)", d.Desired, tc.want, d.Reason)
			}
		})
	}
}

// Verifies the pods signal kind: the pods' average against a per-pod
// target, with HPA's handling of missing and pending pods.
func TestPodsSignal(t *testing.T) {
	sig := SignalSpec{Name: "rps", Kind: KindPods, Pods: &PodsSpec{TargetPerPod: 20}}
	pods := func(values ...float64) []PodSample {
		p := runningPods(len(values), 0, 0)
		for i, v := range values {
			p[i].Value = v
		}
		return p
	}
	missing := func(p []PodSample, i int) []PodSample { p[i].HasMetric, p[i].Value = false, 0; return p }
	pending := func(p []PodSample, i int) []PodSample { p[i].Phase, p[i].HasMetric = PodPending, false; return p }
	cases := []struct {
		name    string
		pods    []PodSample
		want    int32
		invalid bool
	}{
		{name: "average over the pods", pods: pods(30, 40, 20, 30), want: 6},
		// Naively ceil(0.5×3) = 2; the missing pod is assumed at the target.
		{name: "a missing pod counts at the target on a scale-down", pods: missing(pods(10, 10, 10, 0), 3), want: 3},
		// 1.5× on the measured pods, 0.75× counting the pending ones as idle:
		// the direction flips, so the count holds.
		{name: "pending pods count as idle on a scale-up and a flip holds", pods: pending(pending(pods(30, 30, 0, 0), 2), 3), want: 4},
		{name: "readiness does not matter, only the phase", pods: func() []PodSample { p := pods(40, 40, 40, 40); p[0].Ready = false; return p }(), want: 8},
		{name: "a NaN sample is invalid", pods: pods(30, math.NaN(), 20, 30), invalid: true},
		{name: "no sample at all is invalid", pods: missing(missing(pods(0, 0), 0), 1), invalid: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := signalProposal(t, sig, podsObs(tc.pods), 4)
			if tc.invalid {
				if r.Status != StatusInvalid {
					t.Fatalf("status %s (%s), want invalid", r.Status, r.Note)
				}
				return
			}
			if r.Status != StatusOK || r.Proposal != tc.want {
				t.Fatalf("proposal %d (%s: %s), want %d", r.Proposal, r.Status, r.Note, tc.want)
			}
		})
	}
}

// Verifies that a decision's ScalingLimited reason reads and writes as the
// HPA controller's name, and is left out when the step did not run.
func TestScalingLimitedReasonJSON(t *testing.T) {
	data, err := json.Marshal(Decision{Service: "api", ScalingLimited: ReasonScaleUpLimit})
	if err != nil || !strings.Contains(string(data), `"scalingLimited":"ScaleUpLimit"`) {
		t.Fatalf("marshal: %s, %v", data, err)
	}
	var d Decision
	if err := json.Unmarshal(data, &d); err != nil || d.ScalingLimited != ReasonScaleUpLimit {
		t.Fatalf("unmarshal: %v, %v", d.ScalingLimited, err)
	}
	if data, _ := json.Marshal(Decision{Service: "api"}); strings.Contains(string(data), "scalingLimited") {
		t.Errorf("ReasonNone should be omitted: %s", data)
	}
	if err := json.Unmarshal([]byte(`{"scalingLimited":"Bogus"}`), &d); err == nil {
		t.Error("an unknown reason should not parse")
	}
}
