package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

// heldRun is a gateway calling a service once per request: warmed on six
// healthy ticks, then fed the crowd tick given.
type heldRun struct {
	spec  Spec
	state State
	now   time.Time
}

func newHeldRun() *heldRun {
	spec := Spec{StaleAfter: time.Minute, AttributionMemory: 2 * time.Minute, Mesh: &MeshSpec{}, Services: []ServiceSpec{
		service("main", 2, 20, cpuSignal("cpu", 70)),
		service("collector", 2, 20, cpuSignal("cpu", 70)),
	}}
	spec.Services[1].Behavior.ScaleUp.Policies = nil // the proposal itself
	return &heldRun{spec: spec, now: anyTime}
}

// tick observes main receiving mainIn/s and answering mainOut/s, calling
// collector once per answered request; collector answers collOut/s of
// those with its own latency collOwn.
func (r *heldRun) tick(t *testing.T, mainIn, mainOut, collOut, collOwn float64) Decision {
	t.Helper()
	r.now = r.now.Add(15 * time.Second)
	calls := mainOut
	collLat := collOwn
	in := map[string]MeshCounts{
		"main":      {Requests: mainIn, Responses: mainOut, Successes: mainOut, LatencySum: (0.02 + collLat) * mainOut, LatencyCount: mainOut},
		"collector": {Requests: calls, Responses: collOut, Successes: collOut, LatencySum: collLat * collOut, LatencyCount: collOut},
	}
	edges := map[MeshEdgeKey]MeshCounts{
		{From: "main", To: "collector"}: {Requests: calls, Responses: calls, Successes: calls, LatencySum: collLat * calls, LatencyCount: calls},
	}
	o := NewMeshObservation(r.now, time.Minute, in, edges, 0.01)
	snap := Snapshot{Time: r.now, Services: map[string]ServiceObservation{}, Mesh: &o}
	for _, s := range r.spec.Services {
		pods := runningPods(2, 300, 1000)
		for i := range pods {
			pods[i].MetricTime = r.now.Add(-5 * time.Second)
		}
		snap.Services[s.Name] = observed(2, map[string]Observation{"cpu": {Status: StatusOK, Time: r.now, Pods: pods}})
	}
	plan, next := Decide(r.spec, snap, r.state, r.now)
	r.state = next
	return decisionOf(t, plan, "collector")
}

func (r *heldRun) warm(t *testing.T) {
	t.Helper()
	for range 6 {
		r.tick(t, 40, 40, 40, 0.05)
	}
}

// Verifies that a service whose callers' requests queue behind it is sized
// for the calls those callers hold back as well as for what reaches it: a
// gateway that receives 200/s and answers 160/s sends 160 calls a second
// where its demand is 200, and the 40 more arrive as soon as the gateway
// is relieved. The same tick with a gateway that answers all it receives
// sizes for the 160 only. By the arithmetic of the mesh's sizing (window
// 1 min, start-up 30 s, drain 10 s, 80% of the 76/s a replica answers):
//
//	calm gateway: (160 + (480 + 8×30)/10) / 60.8 = 3.8 → 4
//	queueing:     (200 + (480 + 40×60 + 48×30)/10) / 60.8 = 10.4 → 11
func TestMeshSizesForCallsHeldBackByCallers(t *testing.T) {
	calm := newHeldRun()
	calm.warm(t)
	c := calm.tick(t, 160, 160, 152, 0.5)
	if c.Desired != 4 {
		t.Errorf("collector behind a calm gateway: %d, want 4: %s", c.Desired, c.Reason)
	}
	if strings.Contains(c.Reason, "held back") {
		t.Errorf("a calm gateway holds nothing back: %s", c.Reason)
	}

	held := newHeldRun()
	held.warm(t)
	d := held.tick(t, 200, 160, 152, 0.5)
	if d.Desired != 11 {
		t.Errorf("collector behind a queueing gateway: %d, want 11: %s", d.Desired, d.Reason)
	}
	if !strings.Contains(d.Reason, "40/s held back by callers' queues") {
		t.Errorf("the reason does not say what the callers hold back: %s", d.Reason)
	}
}

// Verifies the guards of the held-back demand: a stalled caller (it answers
// a tenth of what arrives) is taken to hold back at most as many calls as
// it makes, a caller with too few answers to judge or with rates that are
// not numbers holds back nothing, and none of them panics.
func TestMeshHeldBackGuards(t *testing.T) {
	p := paramsOf(&MeshSpec{})
	for _, tc := range []struct {
		name string
		in   MeshInbound
		want float64
	}{
		{"stalled", MeshInbound{RequestRate: 200, ResponseRate: 20}, meshMaxHeld},
		{"queueing", MeshInbound{RequestRate: 200, ResponseRate: 160}, 0.25},
		{"within noise", MeshInbound{RequestRate: 162, ResponseRate: 160}, 0},
		{"draining", MeshInbound{RequestRate: 100, ResponseRate: 160}, 0},
		{"too few answers", MeshInbound{RequestRate: 10, ResponseRate: 0.5}, 0},
		{"nothing answered", MeshInbound{RequestRate: 10}, 0},
		{"NaN", MeshInbound{RequestRate: math.NaN(), ResponseRate: 160}, 0},
		{"infinite", MeshInbound{RequestRate: math.Inf(1), ResponseRate: 160}, 0},
		{"negative", MeshInbound{RequestRate: 200, ResponseRate: -1}, 0},
	} {
		if got := heldShare(tc.in, p, 60); got != tc.want {
			t.Errorf("%s: held share %v, want %v", tc.name, got, tc.want)
		}
	}
	// Through Decide: a stalled gateway adds at most its own calls.
	r := newHeldRun()
	r.warm(t)
	d := r.tick(t, 2000, 160, 152, 0.5)
	if !strings.Contains(d.Reason, "160/s held back") {
		t.Errorf("a stalled gateway's held-back calls are not capped at the calls it makes: %s", d.Reason)
	}
}
