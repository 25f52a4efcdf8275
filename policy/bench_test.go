package policy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// BenchmarkDecidePreset decides the ELMA365 preset (26 services) on the
// script-storm example snapshot, carrying state between iterations as the
// loop does. The samples are as fresh as the snapshot, as a collection
// makes them, so none goes stale while the benchmark moves time on.
func BenchmarkDecidePreset(b *testing.B) {
	cfg, err := config.ELMA365Preset()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile("../examples/snapshots/script-storm.json")
	if err != nil {
		b.Fatal(err)
	}
	var snap policy.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		b.Fatal(err)
	}
	benchDecide(b, cfg.Policy, fresh(snap))
}

// BenchmarkDecide1000 decides 1,000 synthetic services with CPU, latency
// and queue signals and a layered dependency graph, loaded like a busy
// cluster: about a fifth run above their CPU target and one in twenty
// breaches its latency SLO. The load is steady, as between most ticks.
func BenchmarkDecide1000(b *testing.B) {
	spec, snap := synthetic(1000, 0)
	benchDecide(b, spec, snap)
}

// BenchmarkDecide1000Changing is BenchmarkDecide1000 with every signal's
// value changing from one tick to the next, so every note and reason is
// written again: the worst case of a tick.
func BenchmarkDecide1000Changing(b *testing.B) {
	spec, snap := synthetic(1000, 0)
	_, other := synthetic(1000, 1)
	benchDecide(b, spec, snap, other)
}

// BenchmarkDecidePresetMesh is BenchmarkDecidePreset with the mesh in use:
// every service's inbound traffic and a call graph of about two edges per
// service in the snapshot, one of them to a data store outside the mesh.
func BenchmarkDecidePresetMesh(b *testing.B) {
	cfg, err := config.ELMA365Preset()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile("../examples/snapshots/script-storm.json")
	if err != nil {
		b.Fatal(err)
	}
	var snap policy.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		b.Fatal(err)
	}
	spec := cfg.Policy
	spec.Mesh = &policy.MeshSpec{}
	snap = fresh(snap)
	snap.Mesh = syntheticMesh(spec, snap.Time)
	benchDecide(b, spec, snap)
}

// BenchmarkDecide1000Mesh is BenchmarkDecide1000 with the mesh in use.
func BenchmarkDecide1000Mesh(b *testing.B) {
	spec, snap := synthetic(1000, 0)
	spec.Mesh = &policy.MeshSpec{}
	snap.Mesh = syntheticMesh(spec, snap.Time)
	benchDecide(b, spec, snap)
}

// BenchmarkDecide1000MeshTree is BenchmarkDecide1000Mesh on the shape of a
// real platform's call graph: shallow and wide. Every service calls ten
// others (service k calls 10k+1 … 10k+10, the leaves a data store), so a
// thousand services are four levels deep, and dependsOn is left to the
// mesh. BenchmarkDecide1000Mesh's graph, where each service calls the next
// two, is a thousand levels deep: the worst case for root collection.
func BenchmarkDecide1000MeshTree(b *testing.B) {
	spec, snap := synthetic(1000, 0)
	for i := range spec.Services {
		spec.Services[i].DependsOn = nil
	}
	spec.Mesh = &policy.MeshSpec{}
	inbound := map[string]policy.MeshCounts{}
	edges := map[policy.MeshEdgeKey]policy.MeshCounts{}
	n := len(spec.Services)
	for k, s := range spec.Services {
		inbound[s.Name] = policy.MeshCounts{Requests: 50, Responses: 50, Successes: 50, LatencySum: 50 * 0.08, LatencyCount: 50}
		calls := 0
		for c := 10*k + 1; c <= 10*k+10 && c < n; c++ {
			edges[policy.MeshEdgeKey{From: s.Name, To: spec.Services[c].Name}] = policy.MeshCounts{Requests: 5, Responses: 5, Successes: 5, LatencySum: 5 * 0.004, LatencyCount: 5}
			calls++
		}
		if calls == 0 {
			edges[policy.MeshEdgeKey{From: s.Name, To: "postgres", External: true}] = policy.MeshCounts{Requests: 20, Responses: 20, Successes: 20, LatencySum: 20 * 0.02, LatencyCount: 20}
		}
	}
	o := policy.NewMeshObservation(snap.Time, 30*time.Second, inbound, edges, 0.05)
	snap.Mesh = &o
	benchDecide(b, spec, snap)
}

// syntheticMesh is a mesh observation of spec's services: each receives
// 50 requests/s and calls the next two services in the spec (the last
// ones a data store).
func syntheticMesh(spec policy.Spec, t time.Time) *policy.MeshObservation {
	inbound := map[string]policy.MeshCounts{}
	edges := map[policy.MeshEdgeKey]policy.MeshCounts{}
	n := len(spec.Services)
	for i, s := range spec.Services {
		inbound[s.Name] = policy.MeshCounts{Requests: 50, Responses: 50, Successes: 50, LatencySum: 50 * 0.08, LatencyCount: 50}
		for k := 1; k <= 2; k++ {
			key := policy.MeshEdgeKey{From: s.Name, To: "postgres", External: true}
			if i+k < n {
				key = policy.MeshEdgeKey{From: s.Name, To: spec.Services[i+k].Name}
			}
			edges[key] = policy.MeshCounts{Requests: 10, Responses: 10, Successes: 10, LatencySum: 10 * 0.02, LatencyCount: 10}
		}
	}
	o := policy.NewMeshObservation(t, 30*time.Second, inbound, edges, 0.05)
	return &o
}

// benchDecide decides the snapshots in turn, reporting allocations per
// service besides per call. A few ticks run before the timer starts, so
// the figures are those of the steady path, not the first tick's, which
// writes every note and reason and builds the cache.
func benchDecide(b *testing.B, spec policy.Spec, snaps ...policy.Snapshot) {
	state := policy.State{}
	now := snaps[0].Time
	tick := func(i int) {
		now = now.Add(15 * time.Second)
		snap := snaps[i%len(snaps)]
		snap.Time = now
		_, state = policy.Decide(spec, snap, state, now)
	}
	for i := range 4 * len(snaps) {
		tick(i)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		tick(i)
		n++
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n*len(spec.Services)), "allocs/service")
}

// fresh marks every sample as taken at snapshot time.
func fresh(snap policy.Snapshot) policy.Snapshot {
	for name, o := range snap.Services {
		for k, v := range o.Signals {
			v.Time = time.Time{}
			o.Signals[k] = v
		}
		snap.Services[name] = o
	}
	return snap
}

func synthetic(n, variant int) (policy.Spec, policy.Snapshot) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	spec := policy.Spec{Budget: policy.Budget{MaxTotalReplicas: int32(n * 3)}}
	snap := policy.Snapshot{Time: t0, Services: map[string]policy.ServiceObservation{}}
	for i := range n {
		name := fmt.Sprintf("svc-%04d", i)
		s := policy.ServiceSpec{Name: name, MinReplicas: 2, MaxReplicas: 20, Behavior: policy.DefaultBehavior(),
			Signals: []policy.SignalSpec{
				{Name: "cpu", Kind: policy.KindUtilization, Utilization: &policy.UtilizationSpec{Resource: "cpu", TargetPercent: 70}},
				{Name: "latency", Kind: policy.KindLatency, Latency: &policy.LatencySpec{Quantile: 0.95, SLO: 500 * time.Millisecond}},
			}}
		if i%10 == 0 {
			s.Signals = append(s.Signals, policy.SignalSpec{Name: "queue", Kind: policy.KindQueue, Queue: &policy.QueueSpec{DrainTime: time.Minute, ThroughputPerReplica: 5}})
		}
		if i >= 10 {
			s.DependsOn = []string{fmt.Sprintf("svc-%04d", i/2), fmt.Sprintf("svc-%04d", i-7)}
		}
		spec.Services = append(spec.Services, s)
		pods := make([]policy.PodSample, 3)
		for p := range pods {
			pods[p] = policy.PodSample{Name: fmt.Sprintf("%s-%d", name, p), Phase: policy.PodRunning, Ready: true, ReadyKnown: true,
				StartTime: t0.Add(-time.Hour), ReadyTransition: t0.Add(-time.Hour), HasMetric: true, MetricTime: t0, MetricWindow: 15 * time.Second,
				Usage: int64(300 + (i*37+variant*11)%500), Request: 1000}
		}
		sigs := map[string]policy.Observation{
			"cpu":     {Status: policy.StatusOK, Time: t0, Pods: pods},
			"latency": {Status: policy.StatusOK, Time: t0, Value: latency(i) + float64(variant)*0.003},
			"queue":   {Status: policy.StatusOK, Time: t0, Queue: &policy.QueueObservation{Backlog: float64(i%500 + variant), ArrivalRate: 10, CompletionRate: 12}},
		}
		snap.Services[name] = policy.ServiceObservation{Found: true, CurrentReplicas: 3, ReadyReplicas: 3, Signals: sigs}
	}
	return spec, snap
}

func latency(i int) float64 {
	if i%20 == 7 {
		return 0.9
	}
	return 0.1 + float64((i*53)%100)/1000
}
