package policy_test

import (
	"testing"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// decideFunc is Decide or DecideBurst.
type decideFunc func(policy.Spec, policy.Snapshot, policy.State, time.Time) (policy.Plan, policy.State)

// steadyAllocs is the number of allocations of one Decide call on a
// steady load, after a few ticks have filled the cache.
func steadyAllocs(spec policy.Spec, snap policy.Snapshot) float64 {
	return allocsPerCall(spec, snap, policy.State{}, 15*time.Second, policy.Decide)
}

// allocsPerCall is the number of allocations of one call of decide, every
// step from state on, after a few calls have filled the cache.
func allocsPerCall(spec policy.Spec, snap policy.Snapshot, state policy.State, step time.Duration, decide decideFunc) float64 {
	now := snap.Time
	call := func() {
		now = now.Add(step)
		snap.Time = now
		_, state = decide(spec, snap, state, now)
	}
	for range 5 {
		call()
	}
	return testing.AllocsPerRun(20, call)
}

// TestDecideSteadyAllocations holds the steady path to a few allocations
// per call whatever the number of services: the plan's and the state's
// slices and the state's map, but nothing per service. A note, reason or
// history built anew for every service would add at least one allocation
// per service, a thousand here. Allocation counts do not depend on the
// machine's speed, so the bound is exact enough to catch that.
func TestDecideSteadyAllocations(t *testing.T) {
	for _, mesh := range []bool{false, true} {
		small, large := 0.0, 0.0
		for _, n := range []int{100, 1000} {
			spec, snap := synthetic(n, 0)
			if mesh {
				spec.Mesh = &policy.MeshSpec{}
				snap.Mesh = syntheticMesh(spec, snap.Time)
			}
			a := steadyAllocs(spec, snap)
			if perService := a / float64(n); n == 1000 && perService > 0.02 {
				t.Errorf("mesh %v, %d services: %.0f allocations per call, %.3f per service; want none per service", mesh, n, a, perService)
			}
			if n == 100 {
				small = a
			} else {
				large = a
			}
		}
		// The state's map needs a table more as it grows, nothing else
		// should.
		if large-small > 4 {
			t.Errorf("mesh %v: %.0f allocations per call for 1,000 services, %.0f for 100: they grow with the services", mesh, large, small)
		}
	}
}

// TestDecideBurstSteadyAllocations holds the burst path, which runs every
// second or two between ticks, to the same: after the first call its
// service index and scratch space are reused, so a call with nothing
// bursting allocates nothing per service. A cache built anew for every
// call indexes every service's dependencies again, several allocations per
// service.
func TestDecideBurstSteadyAllocations(t *testing.T) {
	spec, snap := synthetic(1000, 0)
	for i := range spec.Services {
		spec.Services[i].Burst = &policy.BurstSpec{Threshold: 100}
	}
	_, state := policy.Decide(spec, snap, policy.State{}, snap.Time)
	if a := allocsPerCall(spec, snap, state, 2*time.Second, policy.DecideBurst); a/1000 > 0.02 {
		t.Errorf("DecideBurst over 1,000 services: %.0f allocations per call, %.3f per service; want none per service", a, a/1000)
	}
}
