package policy

import (
	"strings"
	"testing"
	"time"
)

// Verifies that a start-up is learned from the first sight of unready
// replicas (or the scale-up that asked for them) to the tick that sees
// them all ready, and that one interrupted by a scale-down, or one that
// takes longer than any real start-up, is not.
func TestMeshLearnsStartup(t *testing.T) {
	t0 := anyTime
	var h MeshHistory
	learnStartup(&h, 2, 2, t0, t0)
	if !h.StartingSince.IsZero() || h.Startup != 0 {
		t.Fatalf("all ready, nothing starting: %+v", h)
	}
	// Scaled 2 → 6 at t0; the next tick sees 2 ready of 6.
	learnStartup(&h, 6, 2, t0.Add(15*time.Second), t0)
	learnStartup(&h, 6, 4, t0.Add(30*time.Second), t0.Add(30*time.Second))
	learnStartup(&h, 6, 6, t0.Add(45*time.Second), t0.Add(45*time.Second))
	if h.Startup != 45 || !h.StartingSince.IsZero() {
		t.Fatalf("start-up learned %v s, want 45 (and the episode closed): %+v", h.Startup, h)
	}
	// A shorter one moves the learned time by a fifth of the difference.
	t1 := t0.Add(time.Hour)
	learnStartup(&h, 8, 6, t1, t1)
	learnStartup(&h, 8, 8, t1.Add(20*time.Second), t1.Add(20*time.Second))
	if want := 45 + meshStartupFall*(20-45); h.Startup != want {
		t.Errorf("after a 20 s start-up: %v, want %v", h.Startup, want)
	}
	before := h.Startup
	// Scaled down while starting: the episode is begun again at the new count.
	t2 := t1.Add(time.Hour)
	learnStartup(&h, 8, 6, t2, t2)
	learnStartup(&h, 7, 6, t2.Add(15*time.Second), t2.Add(15*time.Second))
	learnStartup(&h, 7, 7, t2.Add(30*time.Second), t2.Add(30*time.Second))
	if h.Startup != before+meshStartupFall*(15-before) {
		t.Errorf("after a scale-down during a start-up: %v, want the 15 s since the count fell", h.Startup)
	}
	before = h.Startup
	// A replica unready for an hour is failing, not starting.
	t3 := t2.Add(time.Hour)
	learnStartup(&h, 8, 7, t3, t3)
	learnStartup(&h, 8, 8, t3.Add(time.Hour), t3.Add(time.Hour))
	if h.Startup != before {
		t.Errorf("an hour unready was learned as a start-up: %v, want %v", h.Startup, before)
	}
}

// Verifies that a scale-up for a queue is sized for the requests that keep
// queueing while the new replicas start: the longer the start-up, the more
// replicas, by the arithmetic of the measured capacity.
func TestMeshSizesForTheQueueDuringStartup(t *testing.T) {
	for _, tc := range []struct {
		startup time.Duration
		want    int32
	}{
		// files answers 56.7 of 63/s on 2 replicas (28.35/s each), 378
		// requests unanswered over the minute. Needed: (63 + (378 + 6.3 ×
		// startup) / 10) / (0.8 × 28.35).
		{time.Second, 5},       // 4.47
		{30 * time.Second, 6},  // 5.28
		{90 * time.Second, 7},  // 6.94
		{150 * time.Second, 9}, // 8.61
	} {
		spec, m := fileGraph()
		spec.Mesh.StartupTime = tc.startup
		spec.Services[4].Behavior.ScaleUp.Policies = nil // no rate cap: the proposal itself
		r := newMeshRun(spec)
		hot := r.warmThenQueueAtFiles(t, m)
		f := decisionOf(t, r.tick(t, hot, 2.5, 40), "files")
		if f.Desired != tc.want {
			t.Errorf("start-up %s: files sized %d, want %d: %s", tc.startup, f.Desired, tc.want, f.Reason)
		}
	}
}

// Verifies that once the queue a scale-up drained is gone (own latency back
// at its baseline), the service comes down to what its arrivals need at
// the measured capacity within a minute instead of holding the drain's
// replicas for the whole stabilization window; that it comes down no
// further; and that while the backlog still drains it is not scaled down.
func TestMeshScaleDownAfterTheQueueIsGone(t *testing.T) {
	spec, m := fileGraph()
	spec.Services[4].Behavior.ScaleUp.Policies = nil
	r := newMeshRun(spec)
	hot := r.warmThenQueueAtFiles(t, m)
	r.tick(t, hot, 2.5, 40)
	r.tick(t, hot, 2.5, 40)
	up := r.cur["files"]
	if up < 6 {
		t.Fatalf("files not scaled for its queue: %d", up)
	}
	// The backlog drains: half again as many answers as requests, a
	// window too unsteady to judge.
	drain := m.clone()
	drain.own["files"] = 0.5
	drain.backlogShare["files"] = -0.5
	for range 2 {
		f := decisionOf(t, r.tick(t, drain, 0.2, 4), "files")
		if f.Desired < f.Current {
			t.Fatalf("scaled down while the backlog drains: %s", f.Reason)
		}
	}
	// Back at the baseline: 63/s at 28.35/s per replica and 80% need 3.
	var got []int32
	for range 4 {
		got = append(got, decisionOf(t, r.tick(t, m, 0.2, 4), "files").Desired)
	}
	if got[len(got)-1] != 3 {
		t.Errorf("files after the queue is gone: %v, want down to 3 within a minute", got)
	}
	for _, n := range got {
		if n < 3 {
			t.Errorf("files below what its arrivals need: %v", got)
		}
	}
	// And it stays there: the steady load asks for no change.
	for range 20 {
		if n := decisionOf(t, r.tick(t, m, 0.2, 4), "files").Desired; n != 3 {
			t.Fatalf("files moved to %d at a steady load", n)
		}
	}
}

// Verifies that a capacity measured while a data store was slow stops
// sizing the service once the store is fast again: processor's slots,
// held by queries five times slower than usual, ran out at a fraction of
// what they answer afterwards, and sizing on that figure would keep the
// scale-up for good. A queue that comes back measures a capacity anew.
func TestMeshCapacityMeasuredInASlowPhaseExpires(t *testing.T) {
	spec, m := fileGraph()
	spec.Services[2].Behavior.ScaleUp.Policies = nil
	r := newMeshRun(spec)
	r.warm(t, m)
	// PostgreSQL slow (2 queries of 100 ms a request instead of 5 ms) and
	// processor's requests queue for its held slots.
	slow := m.clone()
	slow.outside["postgresql"] = 0.1
	slow.own["processor"] = 1.0
	slow.backlogShare["processor"] = 0.1
	p := decisionOf(t, r.tick(t, slow, 2.5, 40), "processor")
	if p.Desired <= 2 || !strings.Contains(p.Reason, "measured as requests queued") {
		t.Fatalf("processor not sized from its queue: %d, %s", p.Desired, p.Reason)
	}
	if h := r.state.Services["processor"].Mesh; h == nil || !h.Measured || h.Work < 0.2 {
		t.Fatalf("capacity measured without the seconds a request took then: %+v", h)
	}
	// The queue drains while the store stays slow: the capacity stands (a
	// request still takes what it took when it was measured).
	drained := slow.clone()
	drained.own["processor"] = 0.03
	drained.backlogShare["processor"] = 0
	for range 4 {
		r.tick(t, drained, 0.2, 4)
	}
	if h := r.state.Services["processor"].Mesh; !h.Measured {
		t.Fatalf("capacity dropped while requests still take as long: %+v", h)
	}
	// PostgreSQL is fast again: a request takes a third of the time, the
	// capacity no longer holds and the mesh sizes nothing from it.
	d := decisionOf(t, r.tick(t, m, 0.2, 4), "processor")
	if h := r.state.Services["processor"].Mesh; h.Measured {
		t.Errorf("capacity measured in the slow phase still kept: %+v", h)
	}
	if strings.Contains(d.Reason, "(measured)") {
		t.Errorf("processor still sized from the slow phase's capacity: %s", d.Reason)
	}
	// A new queue measures again.
	hot := m.clone()
	hot.own["processor"] = 1.0
	hot.backlogShare["processor"] = 0.1
	r.tick(t, hot, 2.5, 40)
	if h := r.state.Services["processor"].Mesh; !h.Measured || h.Work <= 0 || h.Work > 0.2 {
		t.Errorf("no capacity measured for the new queue, or not at the new time per request: %+v", h)
	}
}
