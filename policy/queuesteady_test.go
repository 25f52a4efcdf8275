package policy

import (
	"testing"
	"time"
)

// drainRun ticks one queue consumer every 15 s through Decide, applying
// each decision, on the observations given (one per tick), and returns the
// replicas after every tick.
func drainRun(t *testing.T, s ServiceSpec, start int32, obs []QueueObservation) []int32 {
	t.Helper()
	spec := Spec{Services: []ServiceSpec{s}, StaleAfter: time.Minute}
	var st State
	cur := start
	var out []int32
	for i, q := range obs {
		now := anyTime.Add(time.Duration(i) * 15 * time.Second)
		o := queueObs(q)
		o.Time = now.Add(-5 * time.Second)
		snap := Snapshot{Time: now, Services: map[string]ServiceObservation{s.Name: observed(cur, map[string]Observation{"q": o})}}
		var plan Plan
		plan, st = Decide(spec, snap, st, now)
		d, _ := plan.Decision(s.Name)
		cur = d.Desired
		out = append(out, cur)
	}
	return out
}

// Verifies that a pool scaled up to work off a backlog keeps its replicas
// while the backlog drains and comes down to what its arrivals need on the
// first tick the backlog is gone, instead of holding the drain's replicas
// until the queue has been calm for a minute. 20 messages/s at 80% of 5/s
// a replica need 5; a backlog of 1,200 to drain within a minute asks 10.
func TestQueueScaleDownAfterTheBacklogIsWorkedOff(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
	obs := []QueueObservation{
		{ArrivalRate: 20, Backlog: 1200, CompletionRate: 20, ThroughputPerReplica: 5},
		{ArrivalRate: 20, Backlog: 900, CompletionRate: 40, ThroughputPerReplica: 5},
		{ArrivalRate: 20, Backlog: 600, CompletionRate: 40, ThroughputPerReplica: 5},
		{ArrivalRate: 20, Backlog: 300, CompletionRate: 40, ThroughputPerReplica: 5},
	}
	for range 8 {
		obs = append(obs, QueueObservation{ArrivalRate: 20, CompletionRate: 20, ThroughputPerReplica: 5})
	}
	got := drainRun(t, s, 5, obs)
	if got[0] != 10 {
		t.Fatalf("not scaled up for the backlog: %v", got)
	}
	for i := 1; i < 4; i++ {
		if got[i] < got[i-1] {
			t.Errorf("tick %d: scaled down while the backlog drains: %v", i, got)
		}
	}
	if got[4] != 5 {
		t.Errorf("tick 4, the backlog gone: %d replicas, want the 5 the arrivals need: %v", got[4], got)
	}
	for i := 5; i < len(got); i++ {
		if got[i] != 5 {
			t.Errorf("tick %d: %d replicas at a steady load, want 5: %v", i, got[i], got)
		}
	}
}

// Verifies that the arrivals' need the window remembers while a backlog
// drains covers the arrivals' peaks: a drain at 20/s, then a tick at 28/s
// (7 replicas) during it, then the backlog gone at 20/s, keeps 7 for the
// window, not 5.
func TestQueueDrainRemembersTheArrivalsPeak(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5))
	obs := []QueueObservation{
		{ArrivalRate: 20, Backlog: 1200, CompletionRate: 20, ThroughputPerReplica: 5},
		{ArrivalRate: 28, Backlog: 900, CompletionRate: 40, ThroughputPerReplica: 5},
		{ArrivalRate: 20, Backlog: 300, CompletionRate: 40, ThroughputPerReplica: 5},
		{ArrivalRate: 20, CompletionRate: 20, ThroughputPerReplica: 5},
		{ArrivalRate: 20, CompletionRate: 20, ThroughputPerReplica: 5},
	}
	got := drainRun(t, s, 5, obs)
	if got[3] != 7 || got[4] != 7 {
		t.Errorf("after the drain: %v, want 7 kept (the 28/s tick's need)", got)
	}
}

// Verifies that a tick on which one of a pool's queues cannot be read
// while another works off a backlog is remembered whole (the unread queue's
// need is unknown), so the pool does not come down to the other queue's
// arrivals on the next tick; and that nothing here panics on the missing
// reading.
func TestQueueDrainWithAnUnreadQueueIsRememberedWhole(t *testing.T) {
	s := service("worker", 1, 30, queueSignal("q", time.Minute, 5), queueSignal("q2", time.Minute, 5))
	spec := Spec{Services: []ServiceSpec{s}, StaleAfter: time.Minute}
	var st State
	cur := int32(5)
	var got []int32
	for i, q := range []QueueObservation{
		{ArrivalRate: 20, Backlog: 1200, CompletionRate: 20, ThroughputPerReplica: 5},
		{ArrivalRate: 20, Backlog: 2400, CompletionRate: 20, ThroughputPerReplica: 5},
		{ArrivalRate: 20, CompletionRate: 20, ThroughputPerReplica: 5},
	} {
		now := anyTime.Add(time.Duration(i) * 15 * time.Second)
		o := queueObs(q)
		o.Time = now.Add(-5 * time.Second)
		idle := queueObs(QueueObservation{ThroughputPerReplica: 5})
		idle.Time = o.Time
		sigs := map[string]Observation{"q": o, "q2": idle}
		if i == 1 {
			delete(sigs, "q2")
		}
		var plan Plan
		plan, st = Decide(spec, Snapshot{Time: now, Services: map[string]ServiceObservation{s.Name: observed(cur, sigs)}}, st, now)
		d, _ := plan.Decision(s.Name)
		cur = d.Desired
		got = append(got, cur)
	}
	// Tick 1 scales up for q's grown backlog (20 + 2400/60 at 4/s: 15)
	// though q2 is unread; its recommendation stays 15 in the window.
	if got[0] != 10 || got[1] != 15 || got[2] != 15 {
		t.Errorf("replicas %v, want [10 15 15]: the tick with q2 unread must be remembered whole", got)
	}
}
