package policy

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// paceSpec is a worker whose queue signal knows its replicas' concurrency
// (0: not configured) and has no configured throughput.
func paceSpec(concurrency float64) Spec {
	sig := queueSignal("q", time.Minute, 0)
	sig.Queue.ConcurrencyPerReplica = concurrency
	return Spec{Services: []ServiceSpec{service("worker", 1, 40, sig)}, StaleAfter: time.Minute}
}

// slowThenRecovered learns a pace while a dependency is slow (4 replicas
// of 4 slots saturated, a script taking 0.8s: 5/s a replica), then runs
// the pool on 20 scripts/s once scripts take 0.4s again (10/s a replica),
// applying every decision. It returns the replicas after the last tick
// and the last reason.
func slowThenRecovered(t *testing.T, spec Spec, unacked func(current int32) QueueObservation) (int32, string) {
	t.Helper()
	d, st := queueStep(spec, 0, 4, 4, QueueObservation{Backlog: 2000 + 16, Unacked: 16, ArrivalRate: 20, CompletionRate: 20}, State{})
	if got := st.Services["worker"].QueueCapacity["q"]; got != 5 {
		t.Fatalf("learned %v from the slow phase, want 5", got)
	}
	// The backlog drained, the scripts are fast again: the pool keeps up
	// and nothing waits.
	cur := d.Desired
	for i := 1; i <= 60; i++ {
		d, st = queueStep(spec, time.Duration(i)*15*time.Second, cur, cur, unacked(cur), st)
		cur = d.Desired
	}
	return cur, d.Reason
}

// recovered is the pool after the slow phase: 20 scripts/s at 0.4s each,
// 8 in progress whatever the replicas (Little's law).
func recovered(int32) QueueObservation {
	return QueueObservation{Backlog: 8, Unacked: 8, ArrivalRate: 20, CompletionRate: 20}
}

// A pace learned while a dependency was slow is kept when nothing tells
// the pods' pace (the pool is sized on it, so no pod completes more), and
// given up once the messages in progress show the pods are not busy.
func TestQueuePaceLearnedSlowIsRaisedByIdlePods(t *testing.T) {
	// 20/s at 80% of 5/s: 5 replicas, for good.
	if got, why := slowThenRecovered(t, paceSpec(0), recovered); got != 5 {
		t.Fatalf("without the concurrency: %d replicas, want the 5 the learned pace asks (%s)", got, why)
	}
	// 4 slots × 20/s ÷ 8 in progress: 10/s a replica; 20/s at 80% of it
	// is 2.5, so 3 replicas.
	got, why := slowThenRecovered(t, paceSpec(4), recovered)
	if got != 3 {
		t.Fatalf("with 4 slots a replica: %d replicas, want 3 (%s)", got, why)
	}
	// Without the in-progress count, the pace is today's.
	if got, why := slowThenRecovered(t, paceSpec(4), func(int32) QueueObservation {
		return QueueObservation{ArrivalRate: 20, CompletionRate: 20}
	}); got != 5 {
		t.Errorf("no in-progress count: %d replicas, want 5 (%s)", got, why)
	}
}

// Readings the pace cannot be told from fall back to the learned pace:
// a stale in-progress sample, nothing completing, a concurrency that is
// not a number. A NaN or negative count makes the signal invalid, which
// holds.
func TestQueuePaceBadReadingsFallBack(t *testing.T) {
	stale := func(int32) QueueObservation {
		q := recovered(0)
		q.UnackedTime = anyTime.Add(-time.Hour)
		return q
	}
	if got, why := slowThenRecovered(t, paceSpec(4), stale); got != 5 {
		t.Errorf("stale in-progress count: %d replicas, want 5 (%s)", got, why)
	}
	for _, c := range []float64{math.NaN(), math.Inf(1), -4} {
		if got, why := slowThenRecovered(t, paceSpec(c), recovered); got != 5 {
			t.Errorf("concurrency %v: %d replicas, want 5 (%s)", c, got, why)
		}
	}
	for _, bad := range []float64{math.NaN(), -8, math.Inf(1)} {
		spec := paceSpec(4)
		_, st := queueStep(spec, 0, 4, 4, QueueObservation{Backlog: 2016, Unacked: 16, ArrivalRate: 20, CompletionRate: 20}, State{})
		d, _ := queueStep(spec, 15*time.Second, 4, 4, QueueObservation{Backlog: 8, Unacked: bad, ArrivalRate: 20, CompletionRate: 20}, st)
		if d.Desired != 4 || d.Signals[0].Status != StatusInvalid {
			t.Errorf("in progress %v: desired %d, signal %s; want held at 4, invalid", bad, d.Desired, d.Signals[0].Status)
		}
	}
	if p := busyPace(4, &QueueObservation{Unacked: 1, CompletionRate: math.MaxFloat64}); p != 0 {
		t.Errorf("busyPace on an overflowing reading is %v, want 0", p)
	}
	// A fraction of a message in progress (an average over mostly empty
	// samples) times nothing: a pool of idle pods is not shrunk on it.
	if got, why := slowThenRecovered(t, paceSpec(4), func(int32) QueueObservation {
		return QueueObservation{Backlog: 0.05, Unacked: 0.05, ArrivalRate: 20, CompletionRate: 20}
	}); got != 5 {
		t.Errorf("0.05 in progress: %d replicas, want the learned 5 (%s)", got, why)
	}
}

// The pace never sizes a pool that is saturated, settled or not: there
// the completions per replica (or the pace learned) decide as before, whatever the concurrency
// configured (here twice the real one) and however many messages are
// counted in progress.
func TestQueuePaceNeverUndersizesASaturatedPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 500 {
		slots := float64(1 + rng.IntN(16))
		perMessage := 0.05 + rng.Float64()*2
		n := int32(1 + rng.IntN(20))
		capacity := slots / perMessage
		completions := capacity * float64(n)
		// Full replicas, maybe with prefetched messages on top.
		unacked := slots*float64(n) + math.Floor(rng.Float64()*3*slots*float64(n))
		waiting := completions * (10 + rng.Float64()*120)
		q := QueueObservation{Backlog: waiting + unacked, Unacked: unacked, ArrivalRate: completions * (0.5 + rng.Float64()), CompletionRate: completions}
		// Without the pace: the same concurrency (the pool's headroom
		// depends on it), but the in-progress count too old to tell a pace.
		noPace := q
		noPace.UnackedTime = anyTime.Add(-time.Hour)
		for _, c := range []float64{slots, 2 * slots} {
			without, _ := queueStep(paceSpec(c), 0, n, n, noPace, State{})
			with, _ := queueStep(paceSpec(c), 0, n, n, q, State{})
			if with.Proposal != without.Proposal {
				t.Fatalf("saturated pool of %d (%v slots, %.2fs a message, %v in progress, %v waiting), concurrency %v: proposal %d, want %d as without it (%s)",
					n, slots, perMessage, unacked, waiting, c, with.Proposal, without.Proposal, with.Reason)
			}
			// Unsettled (the last tick saw fewer replicas) with a pace
			// learned above what the pool now completes.
			prev := State{Services: map[string]ServiceState{"worker": {LastSeen: true, LastCurrent: n - 1, QueueCapacity: map[string]float64{"q": capacity * 1.5}}}}
			without, _ = queueStep(paceSpec(c), 0, n, n, noPace, prev)
			with, _ = queueStep(paceSpec(c), 0, n, n, q, prev)
			if with.Proposal != without.Proposal {
				t.Fatalf("unsettled pool of %d, concurrency %v: proposal %d, want %d as without it (%s)", n, c, with.Proposal, without.Proposal, with.Reason)
			}
		}
	}
}

// On a pool that keeps up, the pace only ever raises the throughput used:
// never more replicas than without it; with the true concurrency and
// in-progress count, never fewer than the true capacity asks (with the
// pool's headroom for that concurrency); and messages
// prefetched on top of those in progress only ever ask for more.
func TestQueuePaceBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 500 {
		slots := float64(1 + rng.IntN(16))
		perMessage := 0.05 + rng.Float64()*2
		n := int32(2 + rng.IntN(20))
		capacity := slots / perMessage
		arrivals := capacity * float64(n) * (0.05 + 0.9*rng.Float64())
		inProgress := arrivals * perMessage
		learned := capacity * (0.2 + 0.8*rng.Float64())
		st := State{Services: map[string]ServiceState{"worker": {LastSeen: true, LastCurrent: n, QueueCapacity: map[string]float64{"q": learned}}}}
		q := QueueObservation{Backlog: inProgress, Unacked: inProgress, ArrivalRate: arrivals, CompletionRate: arrivals}
		without, _ := queueStep(paceSpec(0), 0, n, n, q, st)
		with, _ := queueStep(paceSpec(slots), 0, n, n, q, st)
		if with.Proposal > without.Proposal {
			t.Fatalf("pace asked for %d, more than the %d without it (%s)", with.Proposal, without.Proposal, with.Reason)
		}
		pool := pooledHeadroom{k: slots, u: 0.8}
		if floor := ceilReplicas(min(arrivals/(0.8*capacity), pool.needs(arrivals/capacity)) - 1e-9); with.Proposal < floor && !(float64(n) <= float64(floor)*1.1 && with.Proposal == n) {
			t.Fatalf("pace asked for %d, below the %d the true %.2f/s a replica needs (%s)", with.Proposal, floor, capacity, with.Reason)
		}
		q.Unacked += math.Floor(rng.Float64() * 3 * slots * float64(n))
		q.Backlog = q.Unacked
		prefetched, _ := queueStep(paceSpec(slots), 0, n, n, q, st)
		if prefetched.Proposal < with.Proposal {
			t.Fatalf("prefetched messages lowered the proposal from %d to %d (%s)", with.Proposal, prefetched.Proposal, prefetched.Reason)
		}
	}
}
