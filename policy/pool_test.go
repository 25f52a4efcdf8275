package policy

import (
	"math"
	"testing"
	"time"
)

// The pooled headroom's law: one replica at the target utilization is one
// replica; no load is ever planned at or past full; a pool never asks for
// more than the fixed target would; and the spare slots grow as the square
// root of the load, so four times the load keeps twice the spare slots.
func TestPooledHeadroomLaw(t *testing.T) {
	for k := 1.0; k <= 16; k++ {
		for _, u := range []float64{0.5, 0.6, 0.7, 0.8, 0.9, 0.95} {
			p := pooledHeadroom{k: k, u: u}
			if got := p.needs(u); math.Abs(got-1) > 1e-9 {
				t.Fatalf("k=%v u=%v: one replica at the target needs %v replicas, want 1", k, u, got)
			}
			prev := 0.0
			for load := u; load < 400; load *= 1.07 {
				n := p.needs(load)
				if n > load/u+1e-9 {
					t.Fatalf("k=%v u=%v load %v: %v replicas, more than the fixed target's %v", k, u, load, n, load/u)
				}
				if n <= load {
					t.Fatalf("k=%v u=%v load %v: %v replicas, not more than the load", k, u, load, n)
				}
				if n <= prev {
					t.Fatalf("k=%v u=%v load %v: %v replicas, not more than for less load (%v)", k, u, load, n, prev)
				}
				prev = n
				spare, spare4 := (n-load)*k, (p.needs(4*load)-4*load)*k
				if spare4 > 2*spare+1e-6 {
					t.Fatalf("k=%v u=%v load %v: %v spare slots, %v at four times the load", k, u, load, spare, spare4)
				}
			}
			for n := int32(1); n <= 200; n++ {
				if got := p.needs(p.carries(n)); math.Abs(got-float64(n)) > 1e-6 {
					t.Fatalf("k=%v u=%v: %d replicas carry %v, which needs %v", k, u, n, p.carries(n), got)
				}
			}
		}
	}
	for _, p := range []pooledHeadroom{{k: 0, u: 0.8}, {k: math.NaN(), u: 0.8}, {k: math.Inf(1), u: 0.8}, {k: 4, u: 1}, {k: 4, u: 0}, {k: -4, u: 0.8}} {
		if n, c := p.needs(10), p.carries(10); !math.IsInf(n, 1) || c != 0 {
			t.Errorf("%+v: needs %v, carries %v; want +Inf and 0 (no pooling)", p, n, c)
		}
	}
}

// A large pool of known concurrency keeps its spare slots, not a fixed
// share of itself: 160 scripts/s at 4 a second a replica is 40 replicas'
// worth, which the fixed 80% sizes at 50 and the pool at 42; a pool of
// unknown concurrency keeps the fixed target; a small pool is the same
// either way.
func TestQueuePooledSizing(t *testing.T) {
	spec := func(concurrency float64) Spec {
		sig := queueSignal("q", time.Minute, 4)
		sig.Queue.ConcurrencyPerReplica = concurrency
		return Spec{Services: []ServiceSpec{service("worker", 1, 100, sig)}, StaleAfter: time.Minute}
	}
	// Nothing in progress is read, so the configured pace holds.
	busy := QueueObservation{ArrivalRate: 160, CompletionRate: 160}
	fixed, _ := queueStep(spec(0), 0, 50, 50, busy, State{})
	if fixed.Desired != 50 {
		t.Fatalf("unknown concurrency: %d replicas, want 50 (%s)", fixed.Desired, fixed.Reason)
	}
	pooled, _ := queueStep(spec(4), 0, 50, 50, busy, State{})
	if pooled.Desired != 42 {
		t.Fatalf("4 slots a replica: %d replicas, want 42 (%s)", pooled.Desired, pooled.Reason)
	}
	// The pool it sized is steady: asked again at 42 it keeps 42.
	again, _ := queueStep(spec(4), 0, 42, 42, busy, State{})
	if again.Desired != 42 {
		t.Errorf("at 42: %d replicas, want 42 kept (%s)", again.Desired, again.Reason)
	}
	small := QueueObservation{ArrivalRate: 3, CompletionRate: 3}
	for _, c := range []float64{0, 4} {
		if d, _ := queueStep(spec(c), 0, 1, 1, small, State{}); d.Desired != 1 {
			t.Errorf("concurrency %v, 3 scripts/s: %d replicas, want 1 (%s)", c, d.Desired, d.Reason)
		}
	}
}
