package policy

import (
	"fmt"
	"testing"
	"time"
)

// anyTime is the fixed epoch every test starts from.
var anyTime = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// runningPods returns n ready pods, started long ago, each using usage of
// request (millicores), sampled just before now.
func runningPods(n int, usage, request int64) []PodSample {
	pods := make([]PodSample, n)
	for i := range pods {
		pods[i] = PodSample{
			Name: fmt.Sprintf("pod-%d", i), Phase: PodRunning,
			Ready: true, ReadyKnown: true,
			StartTime: anyTime.Add(-time.Hour), ReadyTransition: anyTime.Add(-time.Hour + 20*time.Second),
			HasMetric: true, MetricTime: anyTime.Add(-10 * time.Second), MetricWindow: 15 * time.Second,
			Usage: usage, Request: request,
		}
	}
	return pods
}

func cpuSignal(name string, target int32) SignalSpec {
	return SignalSpec{Name: name, Kind: KindUtilization, Utilization: &UtilizationSpec{Resource: ResourceCPU, TargetPercent: target}}
}

func latencySignal(name string, slo time.Duration) SignalSpec {
	return SignalSpec{Name: name, Kind: KindLatency, Latency: &LatencySpec{Quantile: 0.95, SLO: slo}}
}

func queueSignal(name string, drain time.Duration, perReplica float64) SignalSpec {
	return SignalSpec{Name: name, Kind: KindQueue, Queue: &QueueSpec{DrainTime: drain, TargetUtilization: 0.8, ThroughputPerReplica: perReplica}}
}

func service(name string, minR, maxR int32, sigs ...SignalSpec) ServiceSpec {
	return ServiceSpec{Name: name, MinReplicas: minR, MaxReplicas: maxR, Signals: sigs, Behavior: DefaultBehavior()}
}

func ok(v float64) Observation {
	return Observation{Status: StatusOK, Time: anyTime.Add(-5 * time.Second), Value: v}
}

func podsObs(pods []PodSample) Observation {
	return Observation{Status: StatusOK, Time: anyTime.Add(-5 * time.Second), Pods: pods}
}

func queueObs(q QueueObservation) Observation {
	return Observation{Status: StatusOK, Time: anyTime.Add(-5 * time.Second), Queue: &q}
}

func observed(current int32, sigs map[string]Observation) ServiceObservation {
	return ServiceObservation{Found: true, CurrentReplicas: current, ReadyReplicas: current, Signals: sigs}
}

// decideOne runs Decide for a single service from a fresh state.
func decideOne(t *testing.T, s ServiceSpec, o ServiceObservation) Decision {
	t.Helper()
	plan, _ := Decide(Spec{Services: []ServiceSpec{s}, StaleAfter: time.Minute}, Snapshot{Time: anyTime, Services: map[string]ServiceObservation{s.Name: o}}, State{}, anyTime)
	d, found := plan.Decision(s.Name)
	if !found {
		t.Fatalf("no decision for %s", s.Name)
	}
	return d
}
