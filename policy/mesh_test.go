package policy

import (
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// meshModel is a small call graph whose mesh observation is computed from
// each service's own latency and its calls: the inbound mean of a service
// is its own latency plus, per call, the callee's inbound mean (or an
// outside destination's latency).
type meshModel struct {
	// rate of requests arriving at each service from outside.
	entry map[string]float64
	// calls[from][to] per request; to may be an outside destination.
	calls map[string]map[string]float64
	own   map[string]float64
	// outside destinations and their latency.
	outside map[string]float64
	// backlogShare: the share of arrivals not answered (a queue builds).
	backlogShare map[string]float64
}

// observe computes the observation at t. The graph must be acyclic.
func (m meshModel) observe(t time.Time) *MeshObservation {
	rate := map[string]float64{}
	var visitRate func(s string, r float64)
	visitRate = func(s string, r float64) {
		rate[s] += r
		for to, k := range m.calls[s] {
			if _, out := m.outside[to]; !out {
				visitRate(to, r*k)
			}
		}
	}
	for s, r := range m.entry {
		visitRate(s, r)
	}
	var lat func(s string) float64
	lat = func(s string) float64 {
		l := m.own[s]
		for to, k := range m.calls[s] {
			if ol, out := m.outside[to]; out {
				l += k * ol
			} else {
				l += k * lat(to)
			}
		}
		return l
	}
	inbound := map[string]MeshCounts{}
	edges := map[MeshEdgeKey]MeshCounts{}
	for s := range m.own {
		r := rate[s]
		resp := r * (1 - m.backlogShare[s])
		l := lat(s)
		inbound[s] = MeshCounts{Requests: r, Responses: resp, Successes: resp, LatencySum: l * resp, LatencyCount: resp}
		for to, k := range m.calls[s] {
			el, out := m.outside[to]
			if !out {
				el = lat(to)
			}
			edges[MeshEdgeKey{From: s, To: to, External: out}] = MeshCounts{Requests: r * k, Responses: r * k, Successes: r * k, LatencySum: el * r * k, LatencyCount: r * k}
		}
	}
	o := NewMeshObservation(t, time.Minute, inbound, edges, 0.01)
	return &o
}

func (m meshModel) clone() meshModel {
	c := meshModel{entry: m.entry, calls: m.calls, outside: map[string]float64{}, own: map[string]float64{}, backlogShare: map[string]float64{}}
	for k, v := range m.own {
		c.own[k] = v
	}
	for k, v := range m.outside {
		c.outside[k] = v
	}
	for k, v := range m.backlogShare {
		c.backlogShare[k] = v
	}
	return c
}

// fileGraph is the graph of an I/O-bound file service called by
// collector, processor, docflow and main, processor also calling
// PostgreSQL outside the mesh.
func fileGraph() (Spec, meshModel) {
	lat := latencySignal("latency", 500*time.Millisecond)
	inflight := SignalSpec{Name: "in-flight", Kind: KindPerReplica, Symptom: true, PerReplica: &PerReplicaSpec{TargetPerReplica: 8}}
	spec := Spec{StaleAfter: time.Minute, AttributionMemory: 2 * time.Minute, Mesh: &MeshSpec{}, Services: []ServiceSpec{
		service("main", 2, 10, cpuSignal("cpu", 70), lat),
		service("collector", 2, 10, cpuSignal("cpu", 70), inflight, lat),
		service("processor", 2, 10, cpuSignal("cpu", 70), lat),
		service("docflow", 2, 10, cpuSignal("cpu", 70)),
		service("files", 2, 10, cpuSignal("cpu", 70)),
	}}
	spec.Services[0].DependsOn = []string{"collector", "processor"}
	m := meshModel{
		entry: map[string]float64{"main": 40, "docflow": 5},
		calls: map[string]map[string]float64{
			"main":      {"collector": 1, "processor": 0.5, "files": 0.2},
			"collector": {"files": 1},
			"processor": {"files": 0.5, "postgresql": 2},
			"docflow":   {"files": 1},
		},
		own:          map[string]float64{"main": 0.02, "collector": 0.01, "processor": 0.03, "docflow": 0.02, "files": 0.12},
		outside:      map[string]float64{"postgresql": 0.005},
		backlogShare: map[string]float64{},
	}
	return spec, m
}

// meshRun feeds the model's observations to Decide for ticks ticks, every
// service at cur replicas with CPU at cpu percent and the given latency
// and in-flight values, and returns the last plan.
type meshRun struct {
	spec  Spec
	state State
	now   time.Time
	cur   map[string]int32
}

func newMeshRun(spec Spec) *meshRun {
	r := &meshRun{spec: spec, now: anyTime, cur: map[string]int32{}}
	for _, s := range spec.Services {
		r.cur[s.Name] = s.MinReplicas
	}
	return r
}

// warm runs six healthy ticks of m, so every service has a baseline.
func (r *meshRun) warm(t *testing.T, m meshModel) {
	t.Helper()
	for range 6 {
		r.tick(t, m, 0.2, 4)
	}
}

// warmThenQueueAtFiles runs six healthy ticks of m, so every service has
// a baseline, and returns m with a queue building at files: its own
// latency at 1 s and a tenth of its requests unanswered.
func (r *meshRun) warmThenQueueAtFiles(t *testing.T, m meshModel) meshModel {
	t.Helper()
	r.warm(t, m)
	hot := m.clone()
	hot.own["files"] = 1.0
	hot.backlogShare["files"] = 0.1
	return hot
}

func (r *meshRun) tick(t *testing.T, m meshModel, latency, inflight float64) Plan {
	t.Helper()
	r.now = r.now.Add(15 * time.Second)
	snap := Snapshot{Time: r.now, Services: map[string]ServiceObservation{}, Mesh: m.observe(r.now)}
	for _, s := range r.spec.Services {
		c := r.cur[s.Name]
		pods := runningPods(int(c), 300, 1000)
		for i := range pods {
			pods[i].MetricTime = r.now.Add(-5 * time.Second)
		}
		sigs := map[string]Observation{"cpu": {Status: StatusOK, Time: r.now, Pods: pods}}
		sigs["latency"] = Observation{Status: StatusOK, Time: r.now, Value: latency}
		sigs["in-flight"] = Observation{Status: StatusOK, Time: r.now, Value: inflight}
		snap.Services[s.Name] = observed(c, sigs)
	}
	plan, next := Decide(r.spec, snap, r.state, r.now)
	r.state = next
	for _, d := range plan.Decisions {
		r.cur[d.Service] = d.Desired
	}
	return plan
}

func decisionOf(t *testing.T, p Plan, name string) Decision {
	t.Helper()
	d, ok := p.Decision(name)
	if !ok {
		t.Fatalf("no decision for %s", name)
	}
	return d
}

// Verifies that an I/O-bound service deep in the graph whose requests
// queue is named the bottleneck and scaled by its measured throughput, and
// that its callers' latency and in-flight breaches are attributed to it
// instead of scaling them.
func TestMeshNamesTheQueueingDependency(t *testing.T) {
	spec, m := fileGraph()
	r := newMeshRun(spec)
	for range 6 {
		p := r.tick(t, m, 0.2, 4)
		for _, d := range p.Decisions {
			if d.Desired != 2 || d.Bottleneck {
				t.Fatalf("healthy: %s → %d bottleneck=%v: %s", d.Service, d.Desired, d.Bottleneck, d.Reason)
			}
		}
	}
	// files runs out: its requests queue (own latency ×8) and a tenth of
	// its arrivals go unanswered within the window.
	hot := m.clone()
	hot.own["files"] = 1.0
	hot.backlogShare["files"] = 0.1
	p := r.tick(t, hot, 2.5, 40)
	f := decisionOf(t, p, "files")
	if !f.Bottleneck || f.Desired <= 2 {
		t.Fatalf("files not scaled as the bottleneck: %+v", f)
	}
	if f.Mesh == nil || f.Mesh.Cause != CauseQueueing {
		t.Fatalf("files' verdict: %+v", f.Mesh)
	}
	// files answers 90% of 63/s on 2 replicas: 28.35/s each; queued: the
	// 6.3/s unanswered over the minute, 378, and as many per second again
	// over the 30 s the new replicas take to start (no start-up seen yet:
	// the default), 189; needed: (63 + 567/10) / (0.8 × 28.35) = 5.28 → 6.
	// A proportional ratio on the callers' latency (2.5 s against 500 ms)
	// would have asked for 10.
	if f.Desired != 6 {
		t.Errorf("files sized %d, want 6 from measured throughput: %s", f.Desired, f.Reason)
	}
	for _, name := range []string{"main", "collector", "processor", "docflow"} {
		d := decisionOf(t, p, name)
		if d.Desired != 2 {
			t.Errorf("%s scaled to %d for the dependency: %s", name, d.Desired, d.Reason)
		}
	}
	c := decisionOf(t, p, "collector")
	if !strings.Contains(c.Reason, "attributed to files") {
		t.Errorf("collector's reason does not name files: %s", c.Reason)
	}
}

// Verifies that slower own work at less load than the service answered at
// its baseline, time in a data store outside the mesh, and a
// single-instance service raise no replicas, and that the reason says why.
func TestMeshUnrelievableRaisesNothing(t *testing.T) {
	cases := []struct {
		name string
		// apply returns the spec, the model the baselines are learned on
		// and the one that follows.
		apply func(Spec, meshModel) (Spec, meshModel, meshModel)
		blame string
		want  MeshCause
	}{
		{"slower own work", func(s Spec, m meshModel) (Spec, meshModel, meshModel) {
			busier := m.clone()
			busier.entry = map[string]float64{"main": 52, "docflow": 6.5}
			m.own["files"] = 1.0
			return s, busier, m
		}, "files", CauseSlowerWork},
		{"slow data store", func(s Spec, m meshModel) (Spec, meshModel, meshModel) {
			hot := m.clone()
			hot.outside["postgresql"] = 0.4
			return s, m, hot
		}, "processor", CauseOutside},
		{"single instance", func(s Spec, m meshModel) (Spec, meshModel, meshModel) {
			s.Services[4].Pinned, s.Services[4].MinReplicas, s.Services[4].MaxReplicas = true, 1, 1
			hot := m.clone()
			hot.own["files"] = 1.0
			hot.backlogShare["files"] = 0.1
			return s, m, hot
		}, "files", CauseSingleInstance},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec, m := fileGraph()
			spec2, warm, hot := tc.apply(spec, m.clone())
			r := newMeshRun(spec2)
			r.warm(t, warm)
			for range 3 {
				p := r.tick(t, hot, 2.5, 40)
				for _, d := range p.Decisions {
					if d.Desired > d.Current {
						t.Fatalf("%s raised %d → %d: %s", d.Service, d.Current, d.Desired, d.Reason)
					}
				}
				b := decisionOf(t, p, tc.blame)
				if b.Mesh == nil || b.Mesh.Cause != tc.want {
					t.Fatalf("%s verdict %+v, want %s", tc.blame, b.Mesh, tc.want)
				}
				if !strings.Contains(b.Reason, "none added") {
					t.Errorf("reason does not say nothing is added: %s", b.Reason)
				}
			}
		})
	}
}

// Verifies that a missing, failed, stale, future-stamped or NaN-laden
// mesh observation never scales a service the mesh has been sizing down,
// and never panics.
func TestMeshBadInputHolds(t *testing.T) {
	spec, m := fileGraph()
	r := newMeshRun(spec)
	hot := r.warmThenQueueAtFiles(t, m)
	r.tick(t, hot, 0.2, 4)
	r.tick(t, hot, 0.2, 4)
	scaled := r.cur["files"]
	if scaled <= 2 {
		t.Fatalf("files not scaled: %d", scaled)
	}
	spec.Services[4].Behavior.ScaleDown.StabilizationWindow = 0
	bad := []func(t time.Time) *MeshObservation{
		func(time.Time) *MeshObservation { return nil },
		func(time.Time) *MeshObservation { return &MeshObservation{Status: StatusFailed, Error: "breaker open"} },
		func(t time.Time) *MeshObservation { o := m.observe(t.Add(-time.Hour)); return o },
		func(t time.Time) *MeshObservation { o := m.observe(t.Add(time.Hour)); return o },
		func(t time.Time) *MeshObservation {
			o := m.observe(t)
			in := o.Inbound["files"]
			in.LatencyMean, in.RequestRate = math.NaN(), math.Inf(1)
			o.Inbound["files"] = in
			for k := range o.Edges {
				o.Edges[k].LatencyMean = math.NaN()
			}
			return o
		},
		func(t time.Time) *MeshObservation { o := m.observe(t); delete(o.Inbound, "files"); return o },
	}
	for k, mk := range bad {
		r.now = r.now.Add(15 * time.Second)
		snap := Snapshot{Time: r.now, Services: map[string]ServiceObservation{}, Mesh: mk(r.now)}
		for _, s := range spec.Services {
			c := r.cur[s.Name]
			pods := runningPods(int(c), 50, 1000)
			for i := range pods {
				pods[i].MetricTime = r.now
			}
			snap.Services[s.Name] = observed(c, map[string]Observation{"cpu": {Status: StatusOK, Time: r.now, Pods: pods}, "latency": ok(0.1), "in-flight": ok(1)})
		}
		plan, next := Decide(spec, snap, r.state, r.now)
		r.state = next
		if d := decisionOf(t, plan, "files"); d.Desired < scaled {
			t.Fatalf("case %d: files scaled down %d → %d on bad mesh data: %s", k, scaled, d.Desired, d.Reason)
		}
	}
}

// Verifies that once the queue is gone the mesh's sizing follows the load
// down from the measured throughput rather than holding the peak.
func TestMeshScalesDownWhenEvidenceGoes(t *testing.T) {
	spec, m := fileGraph()
	spec.Services[4].Behavior.ScaleDown.StabilizationWindow = time.Minute
	r := newMeshRun(spec)
	hot := r.warmThenQueueAtFiles(t, m)
	for range 3 {
		r.tick(t, hot, 2, 30)
	}
	peak := r.cur["files"]
	quiet := m.clone()
	quiet.entry = map[string]float64{"main": 4, "docflow": 0.5}
	var last Plan
	for range 12 {
		last = r.tick(t, quiet, 0.1, 1)
	}
	if got := r.cur["files"]; got >= peak || got != 2 {
		t.Fatalf("files at %d after the load fell (peak %d): %s", got, peak, decisionOf(t, last, "files").Reason)
	}
}

// Verifies on a graph with a cycle that attribution terminates and still
// finds the queueing service.
func TestMeshCycle(t *testing.T) {
	spec, m := fileGraph()
	r := newMeshRun(spec)
	r.warm(t, m)
	r.now = r.now.Add(15 * time.Second)
	hot := m.clone()
	hot.own["files"] = 1.0
	hot.backlogShare["files"] = 0.1
	o := hot.observe(r.now)
	// files calls back into collector, a little.
	o.Edges = append(o.Edges, MeshEdge{From: "files", To: "collector", Rate: 1, LatencyMean: 0.001, SuccessShare: 1})
	snap := Snapshot{Time: r.now, Services: map[string]ServiceObservation{}, Mesh: o}
	for _, s := range spec.Services {
		pods := runningPods(2, 300, 1000)
		snap.Services[s.Name] = observed(2, map[string]Observation{"cpu": podsObs(pods), "latency": ok(2.5), "in-flight": ok(40)})
	}
	plan, _ := Decide(spec, snap, r.state, r.now)
	if d := decisionOf(t, plan, "collector"); d.Desired != 2 {
		t.Fatalf("collector scaled: %s", d.Reason)
	}
	if d := decisionOf(t, plan, "files"); !d.Bottleneck {
		t.Fatalf("files not the bottleneck: %s", d.Reason)
	}
}

// Properties: more own latency at a node never moves the blame away from
// it; an unrelievable cause (slower own work at less load, time in a data
// store, a pinned service) never raises replicas; decisions stay within
// bounds.
func TestPropertyMeshBlame(t *testing.T) {
	names := []string{"main", "collector", "processor", "docflow", "files"}
	inBounds := func(rt *rapid.T, spec Spec, p Plan) {
		for i, d := range p.Decisions {
			s := spec.Services[i]
			if d.Desired < s.MinReplicas || d.Desired > s.MaxReplicas {
				rt.Fatalf("%s outside bounds: %d", d.Service, d.Desired)
			}
		}
	}
	run := func(spec Spec, warm, hot meshModel) Plan {
		r := newMeshRun(spec)
		for range 5 {
			r.tick(&testing.T{}, warm, 0.2, 4)
		}
		return r.tick(&testing.T{}, hot, 2.5, 40)
	}
	t.Run("blame stays", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			spec, m := fileGraph()
			target := rapid.SampledFrom(names).Draw(rt, "node")
			base := rapid.Float64Range(1.6, 20).Draw(rt, "growth")
			more := rapid.Float64Range(1, 10).Draw(rt, "more")
			queue := rapid.Bool().Draw(rt, "queue")
			hot := func(factor float64) meshModel {
				h := m.clone()
				h.own[target] = m.own[target]*factor + 0.05
				if queue {
					h.backlogShare[target] = 0.1
				}
				return h
			}
			p1, p2 := run(spec, m, hot(base)), run(spec, m, hot(base*more))
			inBounds(rt, spec, p1)
			inBounds(rt, spec, p2)
			d1, _ := p1.Decision(target)
			d2, _ := p2.Decision(target)
			if d1.Bottleneck && !d2.Bottleneck {
				rt.Fatalf("more own latency at %s moved the blame away: %s / %s", target, d1.Reason, d2.Reason)
			}
		})
	})
	t.Run("unrelievable raises nothing", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			spec, m := fileGraph()
			target := rapid.SampledFrom(names).Draw(rt, "node")
			factor := rapid.Float64Range(1.6, 50).Draw(rt, "factor")
			warm, hot := m, m.clone()
			switch rapid.SampledFrom([]string{"slower", "store", "pinned"}).Draw(rt, "cause") {
			case "slower":
				// The baselines were learned at more load per replica.
				more := rapid.Float64Range(1.15, 3).Draw(rt, "more load before")
				warm = m.clone()
				warm.entry = map[string]float64{"main": 40 * more, "docflow": 5 * more}
				hot.own[target] = m.own[target]*factor + 0.05
			case "store":
				hot.outside["postgresql"] = m.outside["postgresql"]*factor + 0.05
			case "pinned":
				for i := range spec.Services {
					if spec.Services[i].Name == target {
						spec.Services[i].Pinned, spec.Services[i].MinReplicas, spec.Services[i].MaxReplicas = true, 1, 1
					}
				}
				hot.own[target] = m.own[target]*factor + 0.05
				hot.backlogShare[target] = rapid.Float64Range(0, 0.5).Draw(rt, "backlog")
			}
			p := run(spec, warm, hot)
			inBounds(rt, spec, p)
			for _, d := range p.Decisions {
				if d.Desired > d.Current {
					rt.Fatalf("unrelievable cause raised %s %d → %d: %s", d.Service, d.Current, d.Desired, d.Reason)
				}
			}
		})
	})
}
