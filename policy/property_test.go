package policy

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// genSpec draws a spec of 1..8 services with random bounds, pins, signals,
// behavior and (when deps is true) an acyclic dependency graph.
func genSpec(t *rapid.T, deps bool) Spec {
	n := rapid.IntRange(1, 8).Draw(t, "services")
	spec := Spec{StaleAfter: time.Minute}
	if rapid.Bool().Draw(t, "budgeted") {
		spec.Budget.MaxTotalReplicas = rapid.Int32Range(1, 60).Draw(t, "budget")
	}
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		minR := rapid.Int32Range(0, 5).Draw(t, name+".min")
		maxR := minR + rapid.Int32Range(0, 20).Draw(t, name+".span")
		if maxR == 0 {
			maxR = 1
		}
		s := ServiceSpec{Name: name, MinReplicas: minR, MaxReplicas: maxR, Behavior: DefaultBehavior()}
		if rapid.IntRange(0, 5).Draw(t, name+".pinned") == 0 {
			s.Pinned, s.MinReplicas, s.MaxReplicas = true, 1, 1
		}
		if rapid.Bool().Draw(t, name+".fastDown") {
			s.Behavior.ScaleDown.StabilizationWindow = 0
		}
		if rapid.Bool().Draw(t, name+".fallback") {
			s.FallbackReplicas = rapid.Int32Range(0, s.MaxReplicas).Draw(t, name+".fallbackN")
		}
		kinds := rapid.SliceOfN(rapid.SampledFrom([]SignalKind{KindUtilization, KindQueue, KindLatency, KindPerReplica, KindObject, KindPods}), 0, 3).Draw(t, name+".kinds")
		for j, k := range kinds {
			sig := SignalSpec{Name: fmt.Sprintf("g%d", j), Kind: k}
			switch k {
			case KindUtilization:
				sig.Utilization = &UtilizationSpec{Resource: ResourceCPU, TargetPercent: rapid.Int32Range(10, 100).Draw(t, "target")}
			case KindQueue:
				sig.Queue = &QueueSpec{DrainTime: time.Duration(rapid.IntRange(1, 600).Draw(t, "drain")) * time.Second, TargetUtilization: 0.8,
					ThroughputPerReplica: rapid.Float64Range(0, 20).Draw(t, "tput")}
			case KindLatency:
				sig.Latency = &LatencySpec{Quantile: 0.95, SLO: time.Duration(rapid.IntRange(10, 5000).Draw(t, "slo")) * time.Millisecond}
			case KindPerReplica:
				sig.PerReplica = &PerReplicaSpec{TargetPerReplica: rapid.Float64Range(0.5, 500).Draw(t, "per")}
			case KindObject:
				sig.Object = &ObjectSpec{Target: rapid.Float64Range(0.5, 500).Draw(t, "objTarget"), RefuseAgainstLoad: rapid.Bool().Draw(t, "refuse")}
			case KindPods:
				sig.Pods = &PodsSpec{TargetPerPod: rapid.Float64Range(0.5, 500).Draw(t, "perPod")}
			}
			s.Signals = append(s.Signals, sig)
		}
		if deps && i > 0 {
			for _, j := range rapid.SliceOfNDistinct(rapid.IntRange(0, i-1), 0, 2, rapid.ID[int]).Draw(t, name+".deps") {
				s.DependsOn = append(s.DependsOn, fmt.Sprintf("s%d", j))
			}
		}
		spec.Services = append(spec.Services, s)
	}
	return spec
}

// genObservation draws a good observation for sig whose load is scaled by k.
func genObservation(t *rapid.T, sig SignalSpec, current int32, label string) Observation {
	o := Observation{Status: StatusOK, Time: anyTime.Add(-time.Second)}
	switch sig.Kind {
	case KindUtilization, KindPods:
		n := rapid.IntRange(0, 6).Draw(t, label+".pods")
		for i := range n {
			p := runningPods(1, rapid.Int64Range(0, 3000).Draw(t, label+".usage"), 1000)[0]
			p.Name = fmt.Sprintf("p%d", i)
			if sig.Kind == KindPods {
				p.Value = rapid.Float64Range(0, 5000).Draw(t, label+".value")
			}
			if rapid.IntRange(0, 4).Draw(t, label+".nometric") == 0 {
				p.HasMetric = false
			}
			if rapid.IntRange(0, 6).Draw(t, label+".pending") == 0 {
				p.Phase = PodPending
			}
			o.Pods = append(o.Pods, p)
		}
	case KindQueue:
		o.Queue = &QueueObservation{
			Backlog:        rapid.Float64Range(0, 10000).Draw(t, label+".backlog"),
			ArrivalRate:    rapid.Float64Range(0, 100).Draw(t, label+".arrival"),
			CompletionRate: rapid.Float64Range(0, 100).Draw(t, label+".completion"),
		}
	case KindLatency:
		o.Value = rapid.Float64Range(0, 10).Draw(t, label+".latency")
	default:
		o.Value = rapid.Float64Range(0, 5000).Draw(t, label+".value")
	}
	return o
}

func genSnapshot(t *rapid.T, spec Spec) Snapshot {
	snap := Snapshot{Time: anyTime, Services: map[string]ServiceObservation{}}
	for _, s := range spec.Services {
		cur := rapid.Int32Range(0, 30).Draw(t, s.Name+".current")
		obs := ServiceObservation{Found: true, CurrentReplicas: cur, ReadyReplicas: rapid.Int32Range(0, cur).Draw(t, s.Name+".ready"), Signals: map[string]Observation{}}
		for _, sig := range s.Signals {
			obs.Signals[sig.Name] = genObservation(t, sig, cur, s.Name+"."+sig.Name)
		}
		snap.Services[s.Name] = obs
	}
	return snap
}

// corrupt makes one observation unusable in one of the ways sources fail.
func corrupt(t *rapid.T, o Observation) (Observation, bool) {
	switch rapid.IntRange(0, 5).Draw(t, "corruption") {
	case 0:
		return Observation{}, false // absent
	case 1:
		return Observation{Status: StatusFailed, Error: "breaker open"}, true
	case 2:
		o.Time = anyTime.Add(-time.Hour)
		return o, true
	case 3:
		o.Value = math.NaN()
		if o.Queue != nil {
			q := *o.Queue
			q.Backlog = math.NaN()
			o.Queue = &q
		}
		if len(o.Pods) > 0 {
			p := append([]PodSample(nil), o.Pods...)
			p[0].Usage = -1
			for x := range p {
				p[x].Value = math.NaN()
			}
			o.Pods = p
		} else if o.Queue == nil {
			o.Value = math.NaN()
		}
		return o, true
	case 4:
		o.Value = math.Inf(1)
		if o.Queue != nil || len(o.Pods) > 0 {
			return Observation{Status: StatusMissing}, true
		}
		return o, true
	default:
		o.Value = -1
		if o.Queue != nil || len(o.Pods) > 0 {
			return Observation{Status: StatusInvalid, Error: "negative"}, true
		}
		return o, true
	}
}

// Verifies the invariants that hold for every spec and snapshot: desired is
// within bounds, pinned services are at one, the plan fits the budget unless
// what already runs exceeds it.
func TestPropertyBoundsPinsBudget(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := genSpec(t, true)
		snap := genSnapshot(t, spec)
		plan, _ := Decide(spec, snap, State{}, anyTime)
		var floor int32
		for i, d := range plan.Decisions {
			s := spec.Services[i]
			if d.Service != s.Name {
				t.Fatalf("decision %d is for %s, want %s", i, d.Service, s.Name)
			}
			if d.Desired < s.MinReplicas || d.Desired > s.MaxReplicas {
				t.Fatalf("%s: desired %d outside [%d, %d]: %s", s.Name, d.Desired, s.MinReplicas, s.MaxReplicas, d.Reason)
			}
			if s.Pinned && d.Desired != 1 {
				t.Fatalf("%s is pinned but desired %d", s.Name, d.Desired)
			}
			if d.Reason == "" {
				t.Fatalf("%s: empty reason", s.Name)
			}
			floor += min(d.Desired, max(min(d.Current, s.MaxReplicas), s.MinReplicas))
		}
		if b := spec.Budget.MaxTotalReplicas; b > 0 && plan.TotalDesired > max(b, floor) {
			t.Fatalf("total %d exceeds budget %d (floor %d)", plan.TotalDesired, b, floor)
		}
	})
}

// Verifies that a missing, failed, stale, NaN, infinite or negative
// observation never lowers a service's replicas.
func TestPropertyBadDataNeverScalesDown(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := genSpec(t, true)
		snap := genSnapshot(t, spec)
		i := rapid.IntRange(0, len(spec.Services)-1).Draw(t, "victim")
		s := spec.Services[i]
		if len(s.Signals) == 0 {
			t.Skip("no signal to corrupt")
		}
		j := rapid.IntRange(0, len(s.Signals)-1).Draw(t, "signal")
		obs := snap.Services[s.Name]
		sigs := map[string]Observation{}
		for k, v := range obs.Signals {
			sigs[k] = v
		}
		bad, keep := corrupt(t, sigs[s.Signals[j].Name])
		if keep {
			sigs[s.Signals[j].Name] = bad
		} else {
			delete(sigs, s.Signals[j].Name)
		}
		obs.Signals = sigs
		snap.Services[s.Name] = obs
		spec.Budget = Budget{} // the budget may legitimately withhold a scale-up, never a hold
		plan, _ := Decide(spec, snap, State{}, anyTime)
		d := plan.Decisions[i]
		floor := min(max(obs.CurrentReplicas, s.MinReplicas), s.MaxReplicas)
		if s.Pinned {
			floor = 1
		}
		if d.Desired < floor {
			t.Fatalf("%s: signal %s corrupted, desired %d < current %d (bounded %d): %s",
				s.Name, s.Signals[j].Name, d.Desired, obs.CurrentReplicas, floor, d.Reason)
		}
	})
}

// Verifies that, from a fresh state and without a budget or dependencies,
// more load never lowers a service's desired replicas. (With dependencies
// it may, on purpose: a symptom's replicas move to its bottleneck. An
// object signal may too, as HPA's does, unless it refuses a result against
// the load: 4 replicas with 1 ready hold at 1.05× the target but ask for
// ceil(1.5×1) = 2 at 1.5×.)
func TestPropertyMoreLoadNeverLowersDesired(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := genSpec(t, false)
		spec.Budget = Budget{}
		for i := range spec.Services {
			sigs := append([]SignalSpec(nil), spec.Services[i].Signals...)
			for j := range sigs {
				if sigs[j].Object != nil {
					o := *sigs[j].Object
					o.RefuseAgainstLoad = true
					sigs[j].Object = &o
				}
			}
			spec.Services[i].Signals = sigs
		}
		snap := genSnapshot(t, spec)
		k := rapid.Float64Range(1, 5).Draw(t, "factor")
		heavier := Snapshot{Time: snap.Time, Services: map[string]ServiceObservation{}}
		for name, o := range snap.Services {
			h := o
			h.Signals = map[string]Observation{}
			for sn, ob := range o.Signals {
				ob.Value *= k
				if ob.Queue != nil {
					q := *ob.Queue
					q.Backlog *= k
					q.ArrivalRate *= k
					ob.Queue = &q
				}
				if ob.Pods != nil {
					p := append([]PodSample(nil), ob.Pods...)
					for x := range p {
						p[x].Usage = int64(float64(p[x].Usage) * k)
						p[x].Value *= k
					}
					ob.Pods = p
				}
				h.Signals[sn] = ob
			}
			heavier.Services[name] = h
		}
		light, _ := Decide(spec, snap, State{}, anyTime)
		heavy, _ := Decide(spec, heavier, State{}, anyTime)
		for i := range light.Decisions {
			if heavy.Decisions[i].Desired < light.Decisions[i].Desired {
				t.Fatalf("%s: load ×%.2f lowered desired %d → %d\nlight: %s\nheavy: %s", spec.Services[i].Name, k,
					light.Decisions[i].Desired, heavy.Decisions[i].Desired, light.Decisions[i].Reason, heavy.Decisions[i].Reason)
			}
		}
	})
}

// Verifies that over any sequence of ticks where the scaler applies every
// decision, bounds hold and no scale-up exceeds the rate policies.
func TestPropertySequencesRespectRates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := genSpec(t, true)
		spec.Budget = Budget{}
		state := State{}
		current := map[string]int32{}
		for _, s := range spec.Services {
			current[s.Name] = max(s.MinReplicas, 1)
			if s.Pinned {
				current[s.Name] = 1
			}
		}
		ticks := rapid.IntRange(1, 12).Draw(t, "ticks")
		for tick := range ticks {
			now := anyTime.Add(time.Duration(tick) * 15 * time.Second)
			snap := genSnapshot(t, spec)
			snap.Time = now
			for name, o := range snap.Services {
				o.CurrentReplicas, o.ReadyReplicas = current[name], current[name]
				for sn, ob := range o.Signals {
					ob.Time = now
					o.Signals[sn] = ob
				}
				snap.Services[name] = o
			}
			var plan Plan
			plan, state = Decide(spec, snap, state, now)
			for i, d := range plan.Decisions {
				s := spec.Services[i]
				// Default scale-up: at most max(2×, +4) per 15s from the count before.
				if !s.Pinned && d.Desired > max(2*d.Current, d.Current+4, s.MinReplicas) {
					t.Fatalf("tick %d %s: %d → %d exceeds the default scale-up rate", tick, s.Name, d.Current, d.Desired)
				}
				current[s.Name] = d.Desired
			}
		}
	})
}

// Verifies that what Decide keeps between calls to spare work never
// changes a decision: a chain of ticks carrying its state decides exactly
// as the same chain restarted from a bare copy of the state every tick
// (as one read back from JSON is), whether the load changes or repeats.
func TestPropertyCacheNeverChangesADecision(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := genSpec(t, true)
		carried, bare := State{}, State{}
		var snap Snapshot
		ticks := rapid.IntRange(1, 10).Draw(t, "ticks")
		for tick := range ticks {
			now := anyTime.Add(time.Duration(tick) * 15 * time.Second)
			if tick == 0 || !rapid.Bool().Draw(t, "repeat") {
				snap = genSnapshot(t, spec)
			}
			snap.Time = now
			if rapid.Bool().Draw(t, "reorder") && len(spec.Services) > 1 {
				// A new spec value with the same services: the cache must
				// notice the index no longer fits.
				spec.Services = append(spec.Services[1:len(spec.Services):len(spec.Services)], spec.Services[0])
			}
			var pc, pb Plan
			pc, carried = Decide(spec, snap, carried, now)
			pb, bare = Decide(spec, snap, State{Services: bare.Services}, now)
			if diff := cmp.Diff(pb, pc); diff != "" {
				t.Fatalf("tick %d: carried state decides differently (-bare,+carried):\n%s", tick, diff)
			}
			if diff := cmp.Diff(bare.Services, carried.Services); diff != "" {
				t.Fatalf("tick %d: carried state differs (-bare,+carried):\n%s", tick, diff)
			}
		}
	})
}

// Verifies that merging a recommendation into an equal newest one loses
// nothing: stabilization and pruning over the merged history give what
// they give over the full one, at any cutoff.
func TestPropertyRememberKeepsStabilization(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var full, merged []Recommendation
		n := rapid.IntRange(1, 30).Draw(t, "n")
		at := anyTime
		for i := range n {
			at = at.Add(time.Duration(rapid.IntRange(0, 30).Draw(t, fmt.Sprintf("gap%d", i))) * time.Second)
			r := rapid.Int32Range(0, 4).Draw(t, fmt.Sprintf("rec%d", i))
			full = append(full, Recommendation{Time: at, Replicas: r})
			merged = remember(merged, r, at)
		}
		now := at.Add(time.Duration(rapid.IntRange(0, 60).Draw(t, "later")) * time.Second)
		b := Behavior{
			ScaleUp:   ScalingRules{StabilizationWindow: time.Duration(rapid.IntRange(0, 400).Draw(t, "up")) * time.Second},
			ScaleDown: ScalingRules{StabilizationWindow: time.Duration(rapid.IntRange(0, 400).Draw(t, "down")) * time.Second},
		}
		rec, cur := rapid.Int32Range(0, 4).Draw(t, "rec"), rapid.Int32Range(0, 4).Draw(t, "cur")
		if f, m := stabilize(b, full, rec, cur, now), stabilize(b, merged, rec, cur, now); f != m {
			t.Fatalf("stabilize: full history gives %d, merged %d", f, m)
		}
		w := b.ScaleDown.StabilizationWindow
		if f, m := legacyStabilize(full, rec, w, now), legacyStabilize(merged, rec, w, now); f != m {
			t.Fatalf("legacy stabilize: full history gives %d, merged %d", f, m)
		}
		for _, legacy := range []bool{false, true} {
			b.Legacy = legacy
			obs := ServiceObservation{}
			pf := carryHistory(ServiceState{Recommendations: full}, obs, b, now)
			pm := carryHistory(ServiceState{Recommendations: merged}, obs, b, now)
			if f, m := stabilize(b, pf.Recommendations, rec, cur, now), stabilize(b, pm.Recommendations, rec, cur, now); f != m {
				t.Fatalf("after pruning (legacy %v): full history gives %d, merged %d", legacy, f, m)
			}
			if f, m := legacyStabilize(pf.Recommendations, rec, w, now), legacyStabilize(pm.Recommendations, rec, w, now); f != m {
				t.Fatalf("legacy after pruning (legacy %v): full history gives %d, merged %d", legacy, f, m)
			}
		}
	})
}
