package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

// storeGraph is one sync service, jockey, whose requests do 30 ms of their
// own work and wait 40 ms on a store outside the mesh, at 8 requests per
// second.
func storeGraph() (Spec, meshModel) {
	spec := Spec{StaleAfter: time.Minute, AttributionMemory: 2 * time.Minute, Mesh: &MeshSpec{}, Services: []ServiceSpec{
		service("jockey", 2, 10, cpuSignal("cpu", 70)),
	}}
	m := meshModel{
		entry:        map[string]float64{"jockey": 8},
		calls:        map[string]map[string]float64{"jockey": {"blobstore": 1}},
		own:          map[string]float64{"jockey": 0.03},
		outside:      map[string]float64{"blobstore": 0.04},
		backlogShare: map[string]float64{},
	}
	return spec, m
}

func meshSignalOf(d Decision) (SignalResult, bool) {
	for _, s := range d.Signals {
		if s.Kind == KindMesh {
			return s, true
		}
	}
	return SignalResult{}, false
}

// runStoreQueue warms storeGraph, then queues requests at jockey for ticks
// ticks, answering answered(replicas) of the 8 arriving per second, and
// returns the decisions.
func runStoreQueue(t *testing.T, ticks int, answered func(cur int32) float64) []Decision {
	t.Helper()
	spec, m := storeGraph()
	r := newMeshRun(spec)
	r.warm(t, m)
	var out []Decision
	for range ticks {
		hot := m.clone()
		hot.own["jockey"] = 4
		hot.backlogShare["jockey"] = 1 - math.Min(8, answered(r.cur["jockey"]))/8
		out = append(out, decisionOf(t, r.tick(t, hot, 0.2, 4), "jockey"))
	}
	return out
}

// Verifies that a queue whose answers do not rise with the replicas added
// for it (the store they all wait on is the limit) is, once those replicas
// have been ready a whole window, put on the store: the mesh names it,
// asks for no more replicas and for no more than the ones that answered as
// much before, and the replicas come down.
func TestMeshSaturatedDestinationStopsScaling(t *testing.T) {
	ds := runStoreQueue(t, 16, func(int32) float64 { return 4.4 })
	if ds[0].Desired <= 2 {
		t.Fatalf("the first queueing tick added nothing: %s", ds[0].Reason)
	}
	at := -1
	for i, d := range ds {
		s, _ := meshSignalOf(d)
		if strings.Contains(s.Note, "more replicas answered no more") {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatalf("never concluded the replicas relieve nothing: last %s", ds[len(ds)-1].Reason)
	}
	if at > 8 {
		t.Errorf("concluded only at tick %d", at)
	}
	peak := ds[at].Current
	for _, d := range ds[at:] {
		s, _ := meshSignalOf(d)
		if !strings.Contains(s.Note, "blobstore") || !strings.Contains(s.Note, "none added") {
			t.Fatalf("conclusion not held or store not named: %q", s.Note)
		}
		if s.Proposal > 2 || s.Breach {
			t.Errorf("mesh still asks for %d replicas (breach %v): %s", s.Proposal, s.Breach, s.Note)
		}
		if d.Mesh == nil || d.Mesh.Cause != CauseOutside {
			t.Errorf("cause %+v, want %q", d.Mesh, CauseOutside)
		}
		if d.Desired > d.Current {
			t.Errorf("scaled up %d -> %d after the conclusion", d.Current, d.Desired)
		}
	}
	if last := ds[len(ds)-1]; last.Desired >= peak {
		t.Errorf("replicas held at %d (peak %d) once the store was named", last.Desired, peak)
	}
}

// Verifies that a queue the added replicas do relieve (each answers about
// what it did as the queue began, though arrivals outrun even the most
// replicas allowed) keeps being scaled for, and that the store is never
// blamed.
func TestMeshRelievedQueueKeepsScaling(t *testing.T) {
	ds := runStoreQueue(t, 16, func(cur int32) float64 { return 0.5 * float64(cur) })
	for i, d := range ds {
		s, _ := meshSignalOf(d)
		if strings.Contains(s.Note, "answered no more") || (d.Mesh != nil && d.Mesh.Cause == CauseOutside) {
			t.Fatalf("tick %d: a relieved queue put on the store: %s", i, s.Note)
		}
	}
	last := ds[len(ds)-1]
	if last.Desired != 10 {
		t.Errorf("scaled to %d; 8/s at 0.5/s per replica needs the most allowed, 10: %s", last.Desired, last.Reason)
	}
	if s, _ := meshSignalOf(last); !s.Breach || s.Proposal <= last.Current {
		t.Errorf("mesh stopped asking for more: %+v", s)
	}
}

// Verifies that a tick without a usable mesh observation during the check
// neither concludes nor loses what the check learned, and that NaN answers
// do not conclude.
func TestMeshReliefCheckHoldsOnBadReadings(t *testing.T) {
	var h MeshHistory
	h.Relieving, h.Measured, h.Capacity = true, true, 2
	a := &meshAcc{top: -1, topOut: 0}
	edges := []MeshEdge{{From: "jockey", To: "blobstore", External: true}}
	now := anyTime
	if checkRelief(&h, 4, 2, true, 60, a, edges, now) {
		t.Fatal("concluded on the tick the queue began")
	}
	h.ReliefFrom, h.ReliefAnswered = 2, 4
	checkRelief(&h, 4, 6, true, 60, a, edges, now)
	if checkRelief(&h, math.NaN(), 6, true, 60, a, edges, now.Add(90*time.Second)) {
		t.Error("concluded on NaN answers")
	}
	if checkRelief(&h, 4, 6, true, 60, a, edges, now.Add(30*time.Second)) {
		t.Error("concluded before the added replicas were ready a whole window")
	}
	if checkRelief(&h, 4, 6, false, 60, a, edges, now.Add(90*time.Second)) {
		t.Error("concluded while answers keep up with arrivals")
	}
	if !checkRelief(&h, 4.5, 6, true, 60, a, edges, now.Add(90*time.Second)) || h.Unrelieved != "blobstore" {
		t.Errorf("did not conclude on 4.5/s from 6 ready after 4/s from 2: %+v", h)
	}
}

// Verifies that once the store is named, the mesh keeps the replicas that
// answer what the current ones do at what each answered before: answers
// that rose a little (4.4/s on 2 replicas, 5.5/s on more) keep 3.
func TestMeshSaturatedDestinationKeepsWhatAnswers(t *testing.T) {
	ds := runStoreQueue(t, 16, func(cur int32) float64 {
		if cur <= 2 {
			return 4.4
		}
		return 5.5
	})
	last := ds[len(ds)-1]
	s, _ := meshSignalOf(last)
	if !strings.Contains(s.Note, "answered no more") {
		t.Fatalf("store not named: %s", s.Note)
	}
	if s.Proposal != 3 {
		t.Errorf("mesh proposes %d, want 3 (5.5/s at 2.2/s per replica): %s", s.Proposal, s.Note)
	}
}

// Verifies that a service whose slots a slow outside destination holds
// lets go of the replicas its first queue asked for once the queue is
// gone: the mesh adds none for the destination, proposes what the most
// that arrived since the slowdown needs at the capacity measured in the
// slow regime, and the replicas come down to that, not below it, while
// the destination stays slow. Without the rule the replicas stay at the
// queue's count for as long as the destination is slow.
func TestMeshOutsideSlowLetsGoOfQueueReplicas(t *testing.T) {
	spec, m := storeGraph()
	r := newMeshRun(spec)
	r.warm(t, m)
	// The store slows: every request holds its slot 0.6 s longer, the
	// pool runs out and the callers' retries double what arrives.
	queue := m.clone()
	queue.outside["blobstore"] = 0.6
	queue.own["jockey"] = 3
	queue.entry["jockey"] = 16
	queue.backlogShare["jockey"] = 0.4
	var peakReplicas int32
	for range 2 {
		d := decisionOf(t, r.tick(t, queue, 0.2, 4), "jockey")
		peakReplicas = max(peakReplicas, d.Desired)
	}
	if peakReplicas <= 2 {
		t.Fatalf("the queue added nothing: %d", peakReplicas)
	}
	// The queue is worked off; the store stays slow; the retries stop.
	slow := m.clone()
	slow.outside["blobstore"] = 0.6
	var last Decision
	for i := range 40 {
		last = decisionOf(t, r.tick(t, slow, 0.2, 4), "jockey")
		s, ok := meshSignalOf(last)
		if !ok {
			t.Fatalf("tick %d: no mesh result: %s", i, last.Reason)
		}
		if s.Proposal > last.Current {
			t.Fatalf("tick %d: the mesh asks for more (%d > %d) for an outside destination: %s", i, s.Proposal, last.Current, s.Note)
		}
		if last.Desired > last.Current {
			t.Fatalf("tick %d: scaled up %d → %d while the store alone is slow: %s", i, last.Current, last.Desired, last.Reason)
		}
	}
	st := r.state.Services["jockey"].Mesh
	if !st.Measured || st.Capacity <= 0 || st.OutsidePeak < 16 {
		t.Fatalf("capacity %.2f measured %v, peak %.1f: expected a capacity measured in the slow regime and the 16/s peak", st.Capacity, st.Measured, st.OutsidePeak)
	}
	want := ceilReplicas(st.OutsidePeak / (DefaultMeshTargetUtilization * st.Capacity))
	if want >= peakReplicas {
		t.Fatalf("the peak needs %d, no fewer than the queue's %d: the test does not exercise the rule", want, peakReplicas)
	}
	if last.Desired != max(want, 2) {
		t.Errorf("replicas %d after the queue, want %d (the 16/s peak at %.2f/s per replica): %s", last.Desired, max(want, 2), st.Capacity, last.Reason)
	}
}
