package policy

import (
	"math"
	"testing"
	"time"
)

// queueRun ticks one queue consumer every 15s through Decide, applying each
// decision, with the observation obs(i, current) gives at tick i, after a
// tick 0 at 48 messages/s (12 replicas at 80% of 5/s) that puts a
// recommendation of 12 in the window. It returns the replicas after every
// tick, tick 0 first.
func queueRun(t *testing.T, s ServiceSpec, start int32, ticks int, obs func(i int, current int32) Observation) []int32 {
	t.Helper()
	spec := Spec{Services: []ServiceSpec{s}, StaleAfter: time.Minute}
	var st State
	cur := start
	out := make([]int32, 0, ticks)
	for i := range ticks {
		now := anyTime.Add(time.Duration(i) * 15 * time.Second)
		o := queueObs(QueueObservation{ArrivalRate: 48})
		if i > 0 {
			o = obs(i, cur)
		}
		o.Time = now.Add(-5 * time.Second)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{s.Name: observed(cur, map[string]Observation{"q": o})}}
		var plan Plan
		plan, st = Decide(spec, snap, st, now)
		d, _ := plan.Decision(s.Name)
		if d.Desired < s.MinReplicas || d.Desired > s.MaxReplicas {
			t.Fatalf("tick %d: desired %d outside [%d, %d]", i, d.Desired, s.MinReplicas, s.MaxReplicas)
		}
		cur = d.Desired
		out = append(out, cur)
	}
	return out
}

// A pool sized for a storm whose queue then stays empty, with arrivals
// back to what a third of it takes, scales down once the queue has been
// calm for queueCalm, not after the whole five-minute window.
func TestQueueDrainedScalesDownAfterCalm(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
	got := queueRun(t, s, 12, 12, func(int, int32) Observation {
		return queueObs(QueueObservation{ArrivalRate: 12})
	})
	// 12/s at 4/s a replica: 3 replicas.
	first := -1
	for i, n := range got {
		if n < 12 {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("a drained queue never scaled down in 3 minutes: %v", got)
	}
	// Calm from tick 1 must last queueCalm (four 15s ticks) before
	// anything moves.
	if first < 1+int(queueCalm/(15*time.Second)) {
		t.Errorf("scaled down at tick %d, before the queue was calm for %v: %v", first, queueCalm, got)
	}
	if last := got[len(got)-1]; last != 3 {
		t.Errorf("ends at %d replicas, want 3 (12/s at 80%% of 5/s): %v", last, got)
	}
}

// A queue whose backlog keeps growing never scales down, even when its
// arrivals alone would fit fewer replicas.
func TestQueueGrowingNeverScalesDown(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Hour, 5))
	got := queueRun(t, s, 10, 40, func(i int, _ int32) Observation {
		// Arrivals of 8/s need 2 replicas, but messages pile up: the
		// consumers are stuck (no completions).
		return queueObs(QueueObservation{ArrivalRate: 8, Backlog: float64(50 * (i + 1))})
	})
	for i, n := range got {
		if n < 10 {
			t.Fatalf("tick %d: scaled down to %d with a growing backlog: %v", i, n, got)
		}
	}
}

// A queue that is calm most of the time but whose backlog comes back every
// few ticks keeps the full stabilization window: the calm must be
// unbroken.
func TestQueueCalmMustBeUnbroken(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
	got := queueRun(t, s, 12, 19, func(i int, _ int32) Observation {
		if i%3 == 2 {
			// 600 waiting: 12/s + 600/60s = 22/s, 6 replicas, still
			// under 12, but not drained.
			return queueObs(QueueObservation{ArrivalRate: 12, Backlog: 600})
		}
		return queueObs(QueueObservation{ArrivalRate: 12})
	})
	// Within the 5m window (20 ticks) the first recommendation of 12
	// holds.
	for i, n := range got {
		if n != 12 {
			t.Fatalf("tick %d: %d replicas, want 12 held by the window (calm never lasted %v): %v", i, n, queueCalm, got)
		}
	}
}

// Missing, NaN and stale queue readings break the calm and never scale
// down.
func TestQueueBadReadingsHold(t *testing.T) {
	bad := map[string]Observation{
		"missing": {Status: StatusMissing},
		"failed":  {Status: StatusFailed, Error: "connection refused"},
		"nan":     queueObs(QueueObservation{ArrivalRate: math.NaN()}),
		"inf":     queueObs(QueueObservation{ArrivalRate: 1, Backlog: math.Inf(1)}),
		"neg":     queueObs(QueueObservation{ArrivalRate: -3}),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
			// Calm for three ticks, then bad readings for good.
			got := queueRun(t, s, 12, 30, func(i int, _ int32) Observation {
				if i <= 3 {
					return queueObs(QueueObservation{ArrivalRate: 12})
				}
				return b
			})
			for i, n := range got {
				if n != 12 {
					t.Fatalf("tick %d: %d replicas, want 12 held: %v", i, n, got)
				}
			}
		})
	}
	t.Run("stale", func(t *testing.T) {
		s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
		spec := Spec{Services: []ServiceSpec{s}, StaleAfter: time.Minute}
		var st State
		for i := range 30 {
			now := anyTime.Add(time.Duration(i) * 15 * time.Second)
			o := queueObs(QueueObservation{ArrivalRate: 12})
			if i == 0 {
				o = queueObs(QueueObservation{ArrivalRate: 48})
			}
			o.Time = now.Add(-5 * time.Second)
			if i >= 1 {
				// The source stopped updating at tick 1: its reading
				// is stale from tick 5, when the calm would have
				// lasted a minute.
				o.Time = anyTime.Add(10 * time.Second)
			}
			snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"worker": observed(12, map[string]Observation{"q": o})}}
			var plan Plan
			plan, st = Decide(spec, snap, st, now)
			if d := plan.Decisions[0]; d.Desired != 12 {
				t.Fatalf("tick %d: %d replicas from a stale reading, want 12 held (%s)", i, d.Desired, d.Reason)
			}
		}
	})
}

// The calm shortens only the stabilization window: the rate policies,
// bounds and a pin still apply.
func TestQueueCalmKeepsRatesBoundsAndPins(t *testing.T) {
	calm := func(int, int32) Observation { return queueObs(QueueObservation{ArrivalRate: 12}) }
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
	s.Behavior.ScaleDown.Policies = []RatePolicy{{Type: RatePods, Value: 1, Period: time.Minute}}
	got := queueRun(t, s, 12, 20, calm)
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1]-1 {
			t.Fatalf("tick %d: %d → %d, more than the 1 pod a minute allowed: %v", i, got[i-1], got[i], got)
		}
	}
	if got[len(got)-1] >= 12 {
		t.Errorf("no scale-down at all within the rate: %v", got)
	}

	s = service("worker", 8, 30, queueSignal("q", time.Minute, 5))
	if got := queueRun(t, s, 12, 20, calm); got[len(got)-1] != 8 {
		t.Errorf("ends at %d, want minReplicas 8: %v", got[len(got)-1], got)
	}

	s = service("worker", 1, 30, queueSignal("q", time.Minute, 5))
	s.Pinned = true
	for i, n := range queueRun(t, s, 1, 20, func(int, int32) Observation {
		return queueObs(QueueObservation{ArrivalRate: 100})
	}) {
		if n != 1 {
			t.Fatalf("tick %d: pinned service at %d", i, n)
		}
	}
}

// A service whose CPU still needs the replicas keeps them: the calm queue
// only shortens the window, and the proposal is the highest signal's.
func TestQueueCalmDoesNotOverrideOtherSignals(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5), cpuSignal("cpu", 70))
	spec := Spec{Services: []ServiceSpec{s}, StaleAfter: time.Minute}
	var st State
	cur := int32(12)
	for i := range 30 {
		now := anyTime.Add(time.Duration(i) * 15 * time.Second)
		pods := runningPods(int(cur), 700, 1000)
		for k := range pods {
			pods[k].StartTime, pods[k].ReadyTransition = now.Add(-time.Hour), now.Add(-time.Hour)
			pods[k].MetricTime = now.Add(-10 * time.Second)
		}
		q := queueObs(QueueObservation{ArrivalRate: 12})
		if i == 0 {
			q = queueObs(QueueObservation{ArrivalRate: 48})
		}
		q.Time = now.Add(-5 * time.Second)
		p := podsObs(pods)
		p.Time = q.Time
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"worker": observed(cur, map[string]Observation{"q": q, "cpu": p})}}
		var plan Plan
		plan, st = Decide(spec, snap, st, now)
		if d := plan.Decisions[0]; d.Desired < 12 {
			t.Fatalf("tick %d: scaled down to %d while CPU is at its target (%s)", i, d.Desired, d.Reason)
		}
	}
}

// queueStep runs one Decide for a worker with queue signal q at the given
// replicas (ready of them ready).
func queueStep(spec Spec, at time.Duration, current, ready int32, q QueueObservation, st State) (Decision, State) {
	now := anyTime.Add(at)
	snap := Snapshot{Time: now, Services: map[string]ServiceObservation{"worker": {Found: true, CurrentReplicas: current, ReadyReplicas: ready,
		Signals: map[string]Observation{"q": {Status: StatusOK, Time: now, Queue: &q}}}}}
	plan, next := Decide(spec, snap, st, now)
	return plan.Decisions[0], next
}

// Right after a scale-up the new pods share the completions of a window
// they did not work through: that low reading neither lowers the learned
// capacity nor sizes the pool on it. Once the pool is settled a saturated
// reading is the capacity again, lower or not.
func TestQueueUnsettledReadingDoesNotLowerCapacity(t *testing.T) {
	spec := Spec{Services: []ServiceSpec{service("worker", 1, 40, queueSignal("q", time.Minute, 0))}}
	// Settled and saturated: 4 replicas complete 20/s, 5/s each.
	_, st := queueStep(spec, 0, 4, 4, QueueObservation{Backlog: 2000, ArrivalRate: 30, CompletionRate: 20}, State{})
	if got := st.Services["worker"].QueueCapacity["q"]; got != 5 {
		t.Fatalf("learned %v, want 5", got)
	}
	// Scaled to 12, all just ready: the window's completions (36/s) over
	// 12 read 3/s.
	sat := QueueObservation{Backlog: 2000, ArrivalRate: 30, CompletionRate: 36}
	d, st := queueStep(spec, 15*time.Second, 12, 12, sat, st)
	if got := st.Services["worker"].QueueCapacity["q"]; got != 5 {
		t.Errorf("learned %v after an unsettled reading of 3/s, want 5 kept", got)
	}
	// Sized at the learned 5/s: (30 + 2000/60)/(0.8×5) = 15.83 → 16, not
	// the 27 that 3/s would ask for.
	if d.Proposal != 16 {
		t.Errorf("proposal %d, want 16 at the learned 5/s (%s)", d.Proposal, d.Reason)
	}
	// A minute later, nothing changed since: the same reading is the
	// capacity.
	_, st = queueStep(spec, 90*time.Second, 12, 12, sat, st)
	if got := st.Services["worker"].QueueCapacity["q"]; got != 3 {
		t.Errorf("learned %v from a settled saturated reading of 3/s, want 3", got)
	}
	// Pods not ready make the pool unsettled too.
	_, st2 := queueStep(spec, 105*time.Second, 12, 9, QueueObservation{Backlog: 2000, ArrivalRate: 30, CompletionRate: 12}, st)
	if got := st2.Services["worker"].QueueCapacity["q"]; got != 3 {
		t.Errorf("learned %v with 3 of 12 pods unready, want 3 kept", got)
	}
	// An unsettled reading above what is known raises it: it is a lower
	// bound of the capacity.
	_, st2 = queueStep(spec, 105*time.Second, 12, 9, QueueObservation{Backlog: 2000, ArrivalRate: 30, CompletionRate: 36}, st)
	if got := st2.Services["worker"].QueueCapacity["q"]; got != 4 {
		t.Errorf("learned %v from 36/s over 9 ready pods, want 4", got)
	}
}

// A capacity learned from a low reading (a quiet hour's burst) is replaced
// by settled replicas that complete more each, saturated or not; a lower
// unsaturated reading changes nothing.
func TestQueueLatchedCapacityIsRaisedByEvidence(t *testing.T) {
	spec := Spec{Services: []ServiceSpec{service("worker", 1, 40, queueSignal("q", time.Minute, 0))}}
	_, st := queueStep(spec, 0, 2, 2, QueueObservation{Backlog: 500, ArrivalRate: 2, CompletionRate: 2}, State{})
	if got := st.Services["worker"].QueueCapacity["q"]; got != 1 {
		t.Fatalf("learned %v, want 1", got)
	}
	// Keeping up with 10/s on 4 settled replicas: 2.5/s each, above the 1
	// learned.
	_, st = queueStep(spec, 2*time.Minute, 4, 4, QueueObservation{ArrivalRate: 10, CompletionRate: 10}, st)
	_, st = queueStep(spec, 3*time.Minute, 4, 4, QueueObservation{ArrivalRate: 10, CompletionRate: 10}, st)
	if got := st.Services["worker"].QueueCapacity["q"]; got != 2.5 {
		t.Errorf("learned %v, want 2.5 from settled replicas keeping up", got)
	}
	_, st = queueStep(spec, 4*time.Minute, 4, 4, QueueObservation{ArrivalRate: 4, CompletionRate: 4}, st)
	if got := st.Services["worker"].QueueCapacity["q"]; got != 2.5 {
		t.Errorf("learned %v after a quieter minute, want 2.5 kept", got)
	}
}

// Pods that became ready a moment ago did not work through the window the
// completions were counted over, however long ago they were asked for:
// the reading is taken for the capacity only once every pod has been
// ready for queueSettle.
func TestQueueFreshlyReadyPodsAreUnsettled(t *testing.T) {
	spec := Spec{Services: []ServiceSpec{service("worker", 1, 40, queueSignal("q", time.Minute, 0))}}
	sat := func(completions float64) QueueObservation {
		return QueueObservation{Backlog: 2000, ArrivalRate: 30, CompletionRate: completions}
	}
	_, st := queueStep(spec, 0, 4, 4, sat(20), State{})
	if got := st.Services["worker"].QueueCapacity["q"]; got != 5 {
		t.Fatalf("learned %v, want 5", got)
	}
	// Scaled to 8 at 15s; the new pods start slowly.
	_, st = queueStep(spec, 15*time.Second, 8, 4, sat(20), st)
	_, st = queueStep(spec, 60*time.Second, 8, 4, sat(20), st)
	// Ready at 90s, 75s after the scale-up: 24/s over 8 pods reads 3/s.
	_, st = queueStep(spec, 90*time.Second, 8, 8, sat(24), st)
	_, st = queueStep(spec, 120*time.Second, 8, 8, sat(24), st)
	if got := st.Services["worker"].QueueCapacity["q"]; got != 5 {
		t.Errorf("learned %v from pods ready for 30s, want 5 kept", got)
	}
	// A minute after the last pod became ready the reading counts.
	_, st = queueStep(spec, 150*time.Second, 8, 8, sat(32), st)
	if got := st.Services["worker"].QueueCapacity["q"]; got != 4 {
		t.Errorf("learned %v from pods ready for a minute, want 4", got)
	}
}
