package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// burstSpec is a worker pool with a queue signal and the burst path on,
// beside a CPU-scaled service the burst path must leave alone.
func burstSpec() Spec {
	w := service("worker", 2, 20, queueSignal("queue", time.Minute, 5), cpuSignal("cpu", 70))
	w.Burst = &BurstSpec{Threshold: 2}
	return Spec{StaleAfter: time.Minute, Services: []ServiceSpec{w, service("main", 2, 10, cpuSignal("cpu", 70))}}
}

// storm is a queue of 1,200 waiting messages arriving at 20/s: with 4
// msg/s planned per replica it asks for (20 + 1200/60) / 4 = 10 replicas.
func storm() QueueObservation { return QueueObservation{Backlog: 1200, ArrivalRate: 20} }

func burstSnap(worker int32, q Observation) Snapshot {
	return Snapshot{Time: anyTime, Services: map[string]ServiceObservation{
		"worker": observed(worker, map[string]Observation{"queue": q}),
		"main":   observed(3, nil),
	}}
}

// Verifies that a queue jump scales the pool up at once, through the rate
// policies (2 → 6 of the 10 asked: +100% or +4 per 15s), with a reason of
// its own, and that the plan holds the bursting service only.
func TestDecideBurstScalesUpAQueueJump(t *testing.T) {
	plan, st := DecideBurst(burstSpec(), burstSnap(2, queueObs(storm())), State{}, anyTime)
	if len(plan.Decisions) != 1 {
		t.Fatalf("decisions %+v, want the worker's only", plan.Decisions)
	}
	d := plan.Decisions[0]
	if d.Service != "worker" || d.Desired != 6 || d.Proposal != 10 || d.LimitedBy != LimitRate {
		t.Fatalf("worker %d → %d (proposal %d, limited by %q), want 2 → 6 (10, rate): %s", d.Current, d.Desired, d.Proposal, d.LimitedBy, d.Reason)
	}
	if !strings.HasPrefix(d.Reason, "burst: scale up 2 → 6 (queue: ") {
		t.Errorf("reason %q", d.Reason)
	}
	if len(d.Signals) != 1 || d.Signals[0].Name != "queue" {
		t.Errorf("signals %+v, want the queue only", d.Signals)
	}
	if p := st.Services["worker"].Pending; p == nil || p.From != 2 || p.To != 6 {
		t.Errorf("pending %+v, want 2 → 6", p)
	}
	if _, ok := st.Services["main"]; !ok {
		t.Error("state lost the other service")
	}
}

// Verifies that the burst path never acts on what is not a clear jump: a
// queue below the threshold, a missing, failed, stale or invalid
// observation, a target not found (or handed off), a pinned service, a
// service without a burst spec. It then returns no decision and the state
// unchanged.
func TestDecideBurstActsOnlyOnAClearJump(t *testing.T) {
	stale := queueObs(storm())
	stale.Time = anyTime.Add(-2 * time.Minute)
	small := queueObs(QueueObservation{Backlog: 240, ArrivalRate: 8}) // (8 + 4) / 4 = 3 < 2 × 2
	cases := map[string]func(*Spec, *Snapshot){
		"below threshold": func(_ *Spec, s *Snapshot) { s.Services["worker"] = observed(2, map[string]Observation{"queue": small}) },
		"missing":         func(_ *Spec, s *Snapshot) { s.Services["worker"] = observed(2, nil) },
		"failed": func(_ *Spec, s *Snapshot) {
			s.Services["worker"] = observed(2, map[string]Observation{"queue": {Status: StatusFailed, Error: "rabbitmq: timeout"}})
		},
		"stale": func(_ *Spec, s *Snapshot) { s.Services["worker"] = observed(2, map[string]Observation{"queue": stale}) },
		"invalid": func(_ *Spec, s *Snapshot) {
			s.Services["worker"] = observed(2, map[string]Observation{"queue": queueObs(QueueObservation{Backlog: -5})})
		},
		"not found": func(_ *Spec, s *Snapshot) {
			o := s.Services["worker"]
			o.Found = false
			s.Services["worker"] = o
		},
		"pinned": func(sp *Spec, _ *Snapshot) {
			sp.Services[0].Pinned, sp.Services[0].MinReplicas, sp.Services[0].MaxReplicas = true, 1, 1
		},
		"no burst spec": func(sp *Spec, _ *Snapshot) { sp.Services[0].Burst = nil },
	}
	prev := State{Services: map[string]ServiceState{"worker": {LastCurrent: 2, LastSeen: true, Pending: &ScaleEvent{Time: anyTime, From: 2, To: 3}}}}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			spec, snap := burstSpec(), burstSnap(2, queueObs(storm()))
			change(&spec, &snap)
			plan, st := DecideBurst(spec, snap, prev, anyTime.Add(time.Second))
			if len(plan.Decisions) != 0 {
				t.Fatalf("burst acted: %+v", plan.Decisions)
			}
			if diff := cmp.Diff(prev.Services, st.Services); diff != "" {
				t.Errorf("state changed (-prev,+got):\n%s", diff)
			}
		})
	}
}

// Verifies that the burst path keeps every limit: the max bound, the
// cluster budget counted over all services (the held ones at their current
// count), and that it never scales down, even a service above its max.
func TestDecideBurstKeepsLimits(t *testing.T) {
	t.Run("max", func(t *testing.T) {
		spec := burstSpec()
		spec.Services[0].MaxReplicas = 4
		plan, _ := DecideBurst(spec, burstSnap(2, queueObs(storm())), State{}, anyTime)
		if d := plan.Decisions[0]; d.Desired != 4 || d.LimitedBy != LimitMax {
			t.Fatalf("desired %d by %q, want 4 by max: %s", d.Desired, d.LimitedBy, d.Reason)
		}
	})
	t.Run("budget", func(t *testing.T) {
		spec := burstSpec()
		spec.Budget.MaxTotalReplicas = 8 // main holds 3: 5 left for the worker
		plan, _ := DecideBurst(spec, burstSnap(2, queueObs(storm())), State{}, anyTime)
		if d := plan.Decisions[0]; d.Desired != 5 || d.LimitedBy != LimitBudget {
			t.Fatalf("desired %d by %q, want 5 by budget: %s", d.Desired, d.LimitedBy, d.Reason)
		}
	})
	t.Run("never down", func(t *testing.T) {
		spec := burstSpec()
		spec.Services[0].MaxReplicas = 5
		plan, _ := DecideBurst(spec, burstSnap(8, queueObs(QueueObservation{Backlog: 6000, ArrivalRate: 100})), State{}, anyTime)
		if d := plan.Decisions[0]; d.Desired != 8 {
			t.Fatalf("burst took the worker %d → %d; scale-downs are the tick's", d.Current, d.Desired)
		}
	})
}

// Verifies that the burst's scale-up counts against the rate policies of
// the tick that follows, and that its recommendation holds the tick's
// scale-down in the stabilization window: the two paths share one history.
func TestDecideBurstSharesHistoryWithTheTick(t *testing.T) {
	spec := burstSpec()
	_, st := Decide(spec, burstSnap(2, queueObs(QueueObservation{Backlog: 0, ArrivalRate: 4})), State{}, anyTime)
	at := anyTime.Add(5 * time.Second)
	plan, st := DecideBurst(spec, burstSnap(2, queueObs(storm())), st, at)
	if d := plan.Decisions[0]; d.Desired != 6 {
		t.Fatalf("burst %d → %d, want 2 → 6", d.Current, d.Desired)
	}
	// The tick 5s later sees the burst applied and more load: the period's
	// +4 is used up, so it keeps 6.
	at = at.Add(5 * time.Second)
	big := queueObs(QueueObservation{Backlog: 6000, ArrivalRate: 40})
	big.Time = at
	snap := burstSnap(6, big)
	snap.Services["worker"].Signals["cpu"] = podsObs(runningPods(6, 900, 1000))
	plan, st = Decide(spec, snap, st, at)
	if d, _ := plan.Decision("worker"); d.Desired != 6 || d.LimitedBy != LimitRate {
		t.Fatalf("tick after the burst: %d → %d by %q, want 6 kept by the rate policy: %s", d.Current, d.Desired, d.LimitedBy, d.Reason)
	}
	// A minute later the queue is empty: the burst's recommendation of 10
	// is still in the 5-minute scale-down window.
	at = at.Add(time.Minute)
	idle := queueObs(QueueObservation{})
	idle.Time = at
	snap = burstSnap(6, idle)
	snap.Services["worker"].Signals["cpu"] = podsObs(runningPods(6, 100, 1000))
	plan, _ = Decide(spec, snap, st, at)
	if d, _ := plan.Decision("worker"); d.Desired < 6 {
		t.Fatalf("tick scaled the worker down to %d within the window of the burst: %s", d.Desired, d.Reason)
	}
}

// Verifies, for any spec and snapshot, that the burst path only ever
// scales up, keeps the bounds, leaves pinned services alone, never acts on
// a service whose every queue observation is unusable, and leaves the
// state of every service it does not decide exactly as it was.
func TestPropertyBurstOnlyScalesUpWithinLimits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := genSpec(t, true)
		for i := range spec.Services {
			if rapid.Bool().Draw(t, spec.Services[i].Name+".burst") {
				spec.Services[i].Burst = &BurstSpec{Threshold: rapid.Float64Range(0, 4).Draw(t, "threshold")}
			}
		}
		snap := genSnapshot(t, spec)
		broken := map[string]bool{}
		for _, s := range spec.Services {
			if !rapid.Bool().Draw(t, s.Name+".broken") {
				continue
			}
			broken[s.Name] = true
			o := snap.Services[s.Name]
			for _, sig := range s.Signals {
				if sig.Kind == KindQueue {
					if c, keep := corrupt(t, o.Signals[sig.Name]); keep {
						o.Signals[sig.Name] = c
					} else {
						delete(o.Signals, sig.Name)
					}
				}
			}
		}
		_, prev := Decide(spec, snap, State{}, anyTime)
		now := anyTime.Add(2 * time.Second)
		plan, next := DecideBurst(spec, snap, prev, now)
		decided := map[string]bool{}
		for _, d := range plan.Decisions {
			decided[d.Service] = true
			i := slices.IndexFunc(spec.Services, func(s ServiceSpec) bool { return s.Name == d.Service })
			s := spec.Services[i]
			switch {
			case s.Burst == nil || s.Pinned:
				t.Fatalf("%s decided by the burst path without burst spec or while pinned", s.Name)
			case broken[s.Name]:
				t.Fatalf("%s burst on unusable queue data: %s", s.Name, d.Reason)
			case d.Desired < d.Current:
				t.Fatalf("%s scaled down %d → %d by the burst path", s.Name, d.Current, d.Desired)
			case d.Desired > max(s.MaxReplicas, d.Current):
				t.Fatalf("%s burst to %d above max %d", s.Name, d.Desired, s.MaxReplicas)
			case !strings.HasPrefix(d.Reason, "burst: "):
				t.Fatalf("%s reason %q", s.Name, d.Reason)
			}
		}
		for _, s := range spec.Services {
			if !decided[s.Name] {
				if diff := cmp.Diff(prev.Services[s.Name], next.Services[s.Name]); diff != "" {
					t.Fatalf("%s not decided but its state changed:\n%s", s.Name, diff)
				}
			}
		}
	})
}

// Verifies that a burst plan's signal results are its own: the burst path
// works them out in its cache's space, and the calls that follow (quiet
// ones, which reuse that space, and another burst) must not change a plan
// already handed out.
func TestDecideBurstPlanKeepsItsSignals(t *testing.T) {
	spec := burstSpec()
	plan, st := DecideBurst(spec, burstSnap(2, queueObs(storm())), State{}, anyTime)
	if len(plan.Decisions) != 1 {
		t.Fatalf("decisions %+v, want the worker's", plan.Decisions)
	}
	want := slices.Clone(plan.Decisions[0].Signals)
	at := anyTime
	for _, q := range []QueueObservation{{Backlog: 3, ArrivalRate: 0.5}, {}, {Backlog: 5000, ArrivalRate: 90}, {Backlog: 1}} {
		at = at.Add(2 * time.Second)
		snap := burstSnap(6, queueObs(q))
		snap.Time = at
		obs := snap.Services["worker"]
		obs.Signals["queue"] = Observation{Status: StatusOK, Time: at, Queue: &q}
		_, st = DecideBurst(spec, snap, st, at)
	}
	if diff := cmp.Diff(want, plan.Decisions[0].Signals); diff != "" {
		t.Errorf("a later burst call changed the plan's signals (-want,+got):\n%s", diff)
	}
}
