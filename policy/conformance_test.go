package policy

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The HPA controller's own test cases, carried over as data from
// kubernetes/kubernetes pkg/controller/podautoscaler replica_calculator_test.go
// and horizontal_test.go. Each case is named after the upstream test (and
// subtest) it comes from and holds that test's inputs and expected outputs;
// the harness here feeds them to elmascale's policy. Where elmascale
// deliberately decides otherwise the case keeps the upstream expectation in
// hpaWant, names the difference in diff and asserts elmascale's result;
// docs/hpa-conformance.md lists every difference with its reason.
//
// Units are the upstream ones: CPU in millicores, custom metric values in
// thousandths of the metric's unit (resource.NewMilliQuantity), so a level
// of 20000 is a value of 20.

// Pod fixtures are written one letter per pod, in pod order, as the
// upstream tests give them per pod:
//
//	ready:    T ready, F not ready (podReadiness; all ready when empty)
//	start:    . long ago (the zero metav1.Time), h hot (now), c cool (3m ago)
//	phase:    R Running, P Pending, F Failed (all Running when empty)
//	deleting: y has a deletion timestamp (none when empty)
type podFixture struct {
	ready, start, phase, deleting string
}

// letter is the i-th letter of s, or def past its end.
func letter(s string, i int, def byte) byte {
	if i < len(s) {
		return s[i]
	}
	return def
}

// pod builds pod i as the upstream fixtures do: a Ready condition whose last
// transition is at the pod's start (horizontal_test.go) or at the zero time
// (replica_calculator_test.go), a sample taken at sampleTime over a one
// minute window.
func (f podFixture) pod(i int, now time.Time, transitionAtStart bool, sampleTime time.Time) PodSample {
	p := PodSample{Name: "test-pod-" + strconv.Itoa(i), Phase: PodRunning, Ready: true, ReadyKnown: true,
		MetricTime: sampleTime, MetricWindow: time.Minute}
	switch letter(f.start, i, '.') {
	case 'h':
		p.StartTime = now
	case 'c':
		p.StartTime = now.Add(-3 * time.Minute)
	default:
		p.StartTime = now.Add(-24 * time.Hour) // long before any initialization period
	}
	if transitionAtStart {
		p.ReadyTransition = p.StartTime
	}
	p.Ready = letter(f.ready, i, 'T') == 'T'
	switch letter(f.phase, i, 'R') {
	case 'P':
		p.Phase = PodPending
	case 'F':
		p.Phase = PodFailed
	}
	p.Deleting = letter(f.deleting, i, '-') == 'y'
	return p
}

// readyPods counts the Running and Ready pods, as getReadyPodsCount does.
func readyPods(pods []PodSample) int32 {
	var n int32
	for _, p := range pods {
		if p.Phase == PodRunning && p.Ready && !p.Deleting {
			n++
		}
	}
	return n
}

// The upstream replica calculator tests run with a 2 minute CPU
// initialization period and a 10 second initial readiness delay.
const (
	testCPUInitializationPeriod = 2 * time.Minute
	testInitialReadinessDelay   = 10 * time.Second
)

// rcCase is one replica_calculator_test.go case.
type rcCase struct {
	name     string
	current  int32
	want     int32
	wantFail bool // the calculation errors: elmascale reports the signal invalid
	pods     int  // pods listed when more than current (len(podPhase) upstream)
	podFixture

	// Resource (CPU utilization) metrics: per pod, each of its two
	// containers requests requests[i] and uses usage[i] (makePodMetricLevels);
	// pods past usage have no sample.
	requests      []int64
	usage         []int64
	targetPercent int32
	wantPercent   int32

	// Custom metrics: KindPods (podMetric: one level per pod), KindObject
	// (objectMetric and externalMetric with a Value target: their sum) or
	// KindPerReplica (objectPerPodMetric, externalPerPodMetric: their sum).
	kind      SignalKind
	levels    []int64
	target    int64
	wantUsage int64 // expectedUsage
	refuse    bool  // ObjectSpec.RefuseAgainstLoad

	// tolerances are Tolerances{scaleDown, scaleUp}; nil is 10% both ways.
	tolerances *[2]float64

	diff    string // elmascale's documented difference, if any
	hpaWant int32  // upstream's expectedReplicas where diff is set
}

var replicaCalcCases = []rcCase{
	// Resource metrics: CPU utilization of requests.
	{name: "TestReplicaCalcDisjointResourcesMetrics", current: 1, wantFail: true,
		requests: []int64{1000}, targetPercent: 100}, // the only sample is for another pod
	{name: "TestReplicaCalcScaleUp", current: 3, want: 5,
		requests: []int64{1000, 1000, 1000}, usage: []int64{300, 500, 700}, targetPercent: 30, wantPercent: 50},
	{name: "TestReplicaCalcScaleUpUnreadyLessScale", current: 3, want: 4, podFixture: podFixture{ready: "FTT"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{300, 500, 700}, targetPercent: 30, wantPercent: 60},
	{name: "TestReplicaCalcScaleUpHotCpuLessScale", current: 3, want: 4, podFixture: podFixture{start: "hcc"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{300, 500, 700}, targetPercent: 30, wantPercent: 60},
	{name: "TestReplicaCalcScaleUpUnreadyNoScale", current: 3, want: 3, podFixture: podFixture{ready: "TFF"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{400, 500, 700}, targetPercent: 30, wantPercent: 40},
	{name: "TestReplicaCalcScaleHotCpuNoScale", current: 3, want: 3, podFixture: podFixture{ready: "TFF", start: "chh"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{400, 500, 700}, targetPercent: 30, wantPercent: 40},
	{name: "TestReplicaCalcScaleUpIgnoresFailedPods", current: 2, want: 4, podFixture: podFixture{ready: "TTFF", phase: "RRFF"},
		requests: []int64{1000, 1000, 1000, 1000}, usage: []int64{500, 700}, targetPercent: 30, wantPercent: 60},
	{name: "TestReplicaCalcScaleUpIgnoresDeletionPods", current: 2, want: 4, pods: 4, podFixture: podFixture{ready: "TTFF", deleting: "--yy"},
		requests: []int64{1000, 1000, 1000, 1000}, usage: []int64{500, 700}, targetPercent: 30, wantPercent: 60},
	{name: "TestReplicaCalcScaleDown", current: 5, want: 3,
		requests: []int64{1000, 1000, 1000, 1000, 1000}, usage: []int64{100, 300, 500, 250, 250}, targetPercent: 50, wantPercent: 28},
	{name: "TestReplicaCalcScaleDownExcludeUnreadyPods", current: 5, want: 2, podFixture: podFixture{ready: "TTTFF"},
		requests: []int64{1000, 1000, 1000, 1000, 1000}, usage: []int64{100, 300, 500, 250, 250}, targetPercent: 50, wantPercent: 30},
	{name: "TestReplicaCalcScaleDownExcludeUnscheduledPods", current: 5, want: 1, podFixture: podFixture{ready: "TFFFF", phase: "RPPPP"},
		requests: []int64{1000, 1000, 1000, 1000, 1000}, usage: []int64{100}, targetPercent: 50, wantPercent: 10},
	{name: "TestReplicaCalcScaleDownIgnoreHotCpuPods", current: 5, want: 2, podFixture: podFixture{start: "ccchh"},
		requests: []int64{1000, 1000, 1000, 1000, 1000}, usage: []int64{100, 300, 500, 250, 250}, targetPercent: 50, wantPercent: 30},
	{name: "TestReplicaCalcScaleDownIgnoresFailedPods", current: 5, want: 3, podFixture: podFixture{ready: "TTTTTFF", phase: "RRRRRFF"},
		requests: []int64{1000, 1000, 1000, 1000, 1000, 1000, 1000}, usage: []int64{100, 300, 500, 250, 250}, targetPercent: 50, wantPercent: 28},
	{name: "TestReplicaCalcScaleDownIgnoresDeletionPods", current: 5, want: 3, pods: 7, podFixture: podFixture{ready: "TTTTTFF", deleting: "-----yy"},
		requests: []int64{1000, 1000, 1000, 1000, 1000, 1000, 1000}, usage: []int64{100, 300, 500, 250, 250}, targetPercent: 50, wantPercent: 28},
	{name: "TestReplicaCalcTolerance", current: 3, want: 3,
		requests: []int64{900, 1000, 1100}, usage: []int64{1010, 1030, 1020}, targetPercent: 100, wantPercent: 102},
	{name: "TestReplicaCalcSuperfluousMetrics", current: 4, want: 24, // the samples of two pods not in the list are dropped by the collector
		requests: []int64{1000, 1000, 1000, 1000}, usage: []int64{4000, 9500, 3000, 7000}, targetPercent: 100, wantPercent: 587},
	{name: "TestReplicaCalcMissingMetrics", current: 4, want: 3,
		requests: []int64{1000, 1000, 1000, 1000}, usage: []int64{400, 95}, targetPercent: 100, wantPercent: 24},
	{name: "TestReplicaCalcEmptyMetrics", current: 4, wantFail: true,
		requests: []int64{1000, 1000, 1000}, targetPercent: 100},
	{name: "TestReplicaCalcEmptyCPURequest", current: 1, wantFail: true,
		usage: []int64{200}, targetPercent: 100},
	{name: "TestReplicaCalcMissingMetricsNoChangeEq", current: 2, want: 2,
		requests: []int64{1000, 1000}, usage: []int64{1000}, targetPercent: 100, wantPercent: 100},
	{name: "TestReplicaCalcMissingMetricsNoChangeGt", current: 2, want: 2,
		requests: []int64{1000, 1000}, usage: []int64{1900}, targetPercent: 100, wantPercent: 190},
	{name: "TestReplicaCalcMissingMetricsNoChangeLt", current: 2, want: 2,
		requests: []int64{1000, 1000}, usage: []int64{600}, targetPercent: 100, wantPercent: 60},
	{name: "TestReplicaCalcMissingMetricsUnreadyChange", current: 3, want: 3, podFixture: podFixture{ready: "FTT"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{100, 450}, targetPercent: 50, wantPercent: 45},
	{name: "TestReplicaCalcMissingMetricsHotCpuNoChange", current: 3, want: 3, podFixture: podFixture{start: "hcc"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{100, 450}, targetPercent: 50, wantPercent: 45},
	{name: "TestReplicaCalcMissingMetricsUnreadyScaleUp", current: 3, want: 4, podFixture: podFixture{ready: "FTT"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{100, 2000}, targetPercent: 50, wantPercent: 200},
	{name: "TestReplicaCalcMissingMetricsHotCpuScaleUp", current: 3, want: 4, podFixture: podFixture{ready: "FTT", start: "hcc"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{100, 2000}, targetPercent: 50, wantPercent: 200},
	{name: "TestReplicaCalcMissingMetricsUnreadyScaleDown", current: 4, want: 3, podFixture: podFixture{ready: "FTTT"},
		requests: []int64{1000, 1000, 1000, 1000}, usage: []int64{100, 100, 100}, targetPercent: 50, wantPercent: 10},
	{name: "TestReplicaCalcMissingMetricsScaleDownTargetOver100", current: 4, want: 2, podFixture: podFixture{ready: "FTTT"},
		requests: []int64{1000, 1000, 2000, 2000}, usage: []int64{200, 100, 100}, targetPercent: 300, wantPercent: 6},
	{name: "TestReplicaCalcDuringRollingUpdateWithMaxSurge", current: 2, want: 2, podFixture: podFixture{phase: "RRR"},
		requests: []int64{1000, 1000, 1000}, usage: []int64{100, 100}, targetPercent: 50, wantPercent: 10},
	// 10 pods using 150m of about 300m: 50% against a target of 56%
	// (1/(2×0.9)+0.01) is just outside the tolerance, against 55%
	// (1/(2×0.9)+0.004) just inside it.
	{name: "TestReplicaCalcComputedToleranceAlgImplementation", current: 10, want: 9,
		requests: []int64{400, 200, 310, 290, 302, 298, 301, 299, 300, 300},
		usage:    []int64{150, 150, 150, 150, 150, 150, 150, 150, 150, 150}, targetPercent: 56, wantPercent: 50},
	{name: "TestReplicaCalcComputedToleranceAlgImplementation/unscaling", current: 10, want: 10,
		requests: []int64{400, 200, 310, 290, 302, 298, 301, 299, 300, 300},
		usage:    []int64{150, 150, 150, 150, 150, 150, 150, 150, 150, 150}, targetPercent: 55, wantPercent: 50},
	// KEP-4951 per-direction tolerances.
	{name: "TestReplicaCalcConfigurableTolerance/Outside of a 0% tolerance", current: 3, want: 4, tolerances: &[2]float64{0, 0},
		requests: []int64{900, 1000, 1100}, usage: []int64{909, 1010, 1111}, targetPercent: 100, wantPercent: 101},
	{name: "TestReplicaCalcConfigurableTolerance/Within a 200% scale-up tolerance", current: 3, want: 3, tolerances: &[2]float64{0.1, 2},
		requests: []int64{900, 1000, 1100}, usage: []int64{1890, 1910, 1900}, targetPercent: 100, wantPercent: 190},
	{name: "TestReplicaCalcConfigurableTolerance/Outside 8% scale-up tolerance (and superfuous scale-down tolerance)", current: 3, want: 4,
		tolerances: &[2]float64{2, 0.08}, requests: []int64{900, 1000, 1100}, usage: []int64{1100, 1080, 1090}, targetPercent: 100, wantPercent: 109},
	{name: "TestReplicaCalcConfigurableTolerance/Within a 36% scale-down tolerance", current: 3, want: 3, tolerances: &[2]float64{0.36, 0.1},
		requests: []int64{900, 1000, 1100}, usage: []int64{660, 640, 650}, targetPercent: 100, wantPercent: 65},
	{name: "TestReplicaCalcConfigurableTolerance/Outside a 34% scale-down tolerance", current: 3, want: 2, tolerances: &[2]float64{0.34, 0.1},
		requests: []int64{900, 1000, 1100}, usage: []int64{660, 640, 650}, targetPercent: 100, wantPercent: 65},

	// Pods metrics: the pods' average against a per-pod target. Readiness
	// is not looked at, only the phase.
	{name: "TestReplicaCalcScaleUpCM", current: 3, want: 4, kind: KindPods, levels: []int64{20000, 10000, 30000}, target: 15000, wantUsage: 20000},
	{name: "TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", current: 3, want: 6, podFixture: podFixture{ready: "TTF", start: "cch"},
		kind: KindPods, levels: []int64{50000, 10000, 30000}, target: 15000, wantUsage: 30000},
	{name: "TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", current: 3, want: 7, podFixture: podFixture{ready: "FTF", start: "hch"},
		kind: KindPods, levels: []int64{50000, 15000, 30000}, target: 15000, wantUsage: 31666},
	{name: "TestReplicaCalcScaleUpCMExternal", current: 1, want: 2, kind: KindPods, levels: []int64{8600}, target: 4400, wantUsage: 8600},
	{name: "TestReplicaCalcScaleUpCMExternalNoLabels", current: 1, want: 2, kind: KindPods, levels: []int64{8600}, target: 4400, wantUsage: 8600},
	{name: "TestReplicaCalcScaleDownCM", current: 5, want: 3, kind: KindPods, levels: []int64{12000, 12000, 12000, 12000, 12000}, target: 20000, wantUsage: 12000},
	{name: "TestReplicaCalcToleranceCM", current: 3, want: 3, kind: KindPods, levels: []int64{20000, 21000, 21000}, target: 20000, wantUsage: 20666},
	{name: "TestPlainMetricReplicaCalcMissingMetricsNoChangeEq", current: 5, want: 5, kind: KindPods, levels: []int64{20000, 19000, 21000}, target: 20000, wantUsage: 20000},
	{name: "TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM", current: 2, want: 2, podFixture: podFixture{phase: "RRR"},
		kind: KindPods, levels: []int64{10000, 10000}, target: 17000, wantUsage: 10000},
	{name: "TestReplicaCalcConfigurableToleranceCM", current: 3, want: 4, tolerances: &[2]float64{0.1, 0.01},
		kind: KindPods, levels: []int64{20000, 21000, 21000}, target: 20000, wantUsage: 20666},

	// Object and External metrics with a Value target: the ratio scales
	// the ready pods.
	{name: "TestReplicaCalcScaleUpCMObject", current: 3, want: 4, kind: KindObject, levels: []int64{20000}, target: 15000},
	{name: "TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods", current: 3, want: 5, podFixture: podFixture{ready: "FTF"},
		kind: KindObject, levels: []int64{50000}, target: 10000},
	{name: "TestReplicaCalcScaleDownCMObject", current: 5, want: 3, kind: KindObject, levels: []int64{12000}, target: 20000},
	{name: "TestReplicaCalcToleranceCMObject", current: 3, want: 3, kind: KindObject, levels: []int64{20666}, target: 20000},
	{name: "TestReplicaCalcConfigurableToleranceCMObject", current: 3, want: 4, tolerances: &[2]float64{0.1, 0.01},
		kind: KindObject, levels: []int64{20666}, target: 20000},
	// One ready pod of three at 1.95× the target asks for 2: HPA scales
	// down a loaded target here, and so does elmascale by default.
	{name: "TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods", current: 3, want: 2, podFixture: podFixture{ready: "FTF"},
		kind: KindObject, levels: []int64{8600}, target: 4400},
	{name: "TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods/refuseAgainstLoad", current: 3, want: 3, podFixture: podFixture{ready: "FTF"},
		kind: KindObject, levels: []int64{8600}, target: 4400, refuse: true, hpaWant: 2,
		diff: "ObjectSpec.RefuseAgainstLoad (off by default) keeps the current count against the load"},
	{name: "TestReplicaCalcScaleDownCMExternal", current: 5, want: 3, kind: KindObject, levels: []int64{8600}, target: 14334},
	{name: "TestReplicaCalcToleranceCMExternal", current: 3, want: 3, kind: KindObject, levels: []int64{8600}, target: 8888},
	{name: "TestReplicaCalcConfigurableToleranceCMExternal", current: 3, want: 4, tolerances: &[2]float64{0.1, 0.01},
		kind: KindObject, levels: []int64{8900}, target: 8800},

	// Object and External metrics with an AverageValue target: the total
	// over a per-replica target.
	{name: "TestReplicaCalcScaleUpCMPerPodObject", current: 3, want: 4, kind: KindPerReplica, levels: []int64{20000}, target: 5000, wantUsage: 6667},
	{name: "TestReplicaCalcScaleDownPerPodCMObject", current: 5, want: 3, kind: KindPerReplica, levels: []int64{6000}, target: 2000, wantUsage: 1200},
	{name: "TestReplicaCalcTolerancePerPodCMObject", current: 4, want: 4, kind: KindPerReplica, levels: []int64{20166}, target: 5000, wantUsage: 5042},
	{name: "TestReplicaCalcConfigurableTolerancePerPodCMObject", current: 4, want: 5, tolerances: &[2]float64{0.1, 0.01},
		kind: KindPerReplica, levels: []int64{20208}, target: 5000, wantUsage: 5052},
	{name: "TestReplicaCalcScaleUpPerPodCMExternal", current: 3, want: 4, kind: KindPerReplica, levels: []int64{8600}, target: 2150, wantUsage: 2867},
	{name: "TestReplicaCalcScaleDownPerPodCMExternal", current: 5, want: 3, kind: KindPerReplica, levels: []int64{8600}, target: 2867, wantUsage: 1720},
	{name: "TestReplicaCalcTolerancePerPodCMExternal", current: 3, want: 3, kind: KindPerReplica, levels: []int64{8600}, target: 2900, wantUsage: 2867},
	{name: "TestReplicaCalcConfigurableTolerancePerPodCMExternal", current: 3, want: 4, tolerances: &[2]float64{0.1, 0.01},
		kind: KindPerReplica, levels: []int64{8600}, target: 2800, wantUsage: 2867},
}

// signal builds the case's signal and its observation.
func (c rcCase) signal(now time.Time) (SignalSpec, Observation, int32) {
	n := max(int(c.current), len(c.phase), c.pods)
	var pods []PodSample
	for i := range n {
		pods = append(pods, c.podFixture.pod(i, now, false, time.Time{}))
	}
	obs := Observation{Status: StatusOK, Time: now}
	var total float64
	for _, l := range c.levels {
		total += float64(l) / 1000
	}
	target := float64(c.target) / 1000
	switch c.kind {
	case "":
		for i := range pods {
			if i < len(c.requests) {
				pods[i].Request = 2 * c.requests[i]
			}
			pods[i].HasMetric = i < len(c.usage)
			if pods[i].HasMetric {
				pods[i].Usage = 2 * c.usage[i]
			}
		}
		obs.Pods = pods
		return SignalSpec{Name: "cpu", Kind: KindUtilization, Utilization: &UtilizationSpec{Resource: ResourceCPU, TargetPercent: c.targetPercent,
			CPUInitializationPeriod: testCPUInitializationPeriod, InitialReadinessDelay: testInitialReadinessDelay}}, obs, readyPods(pods)
	case KindPods:
		for i := range pods {
			pods[i].HasMetric = i < len(c.levels)
			if pods[i].HasMetric {
				pods[i].Value = float64(c.levels[i]) / 1000
			}
		}
		obs.Pods = pods
		return SignalSpec{Name: "qps", Kind: KindPods, Pods: &PodsSpec{TargetPerPod: target}}, obs, readyPods(pods)
	case KindObject:
		obs.Value = total
		return SignalSpec{Name: "qps", Kind: KindObject, Object: &ObjectSpec{Target: target, RefuseAgainstLoad: c.refuse}}, obs, readyPods(pods)
	default:
		obs.Value = total
		return SignalSpec{Name: "qps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: target}}, obs, readyPods(pods)
	}
}

// Verifies the replica calculator against the upstream cases: resource
// utilization with missing, unready, ignored and starting pods, Pods
// metrics, and Object and External metrics with Value and AverageValue
// targets, with global and per-direction tolerances.
func TestHPAConformanceReplicaCalculator(t *testing.T) {
	now := anyTime
	for _, c := range replicaCalcCases {
		t.Run(c.name, func(t *testing.T) {
			sig, obs, ready := c.signal(now)
			b := Behavior{Tolerance: 0.1}
			if c.tolerances != nil {
				down, up := c.tolerances[0], c.tolerances[1]
				b.ScaleDown.Tolerance, b.ScaleUp.Tolerance = &down, &up
			}
			r, _ := evaluateSignal(sig, obs, true, signalContext{current: c.current, ready: ready, tol: tolerancesOf(b), snapTime: now, now: now})
			if c.wantFail {
				if r.Status != StatusInvalid {
					t.Fatalf("status %s, proposal %d (%s); want the calculation to fail", r.Status, r.Proposal, r.Note)
				}
				return
			}
			if r.Status != StatusOK {
				t.Fatalf("status %s (%s), want ok", r.Status, r.Note)
			}
			if r.Proposal != c.want {
				t.Errorf("replicas %d (%s), want %d%s", r.Proposal, r.Note, c.want, diffNote(c.diff, c.hpaWant))
			}
			switch c.kind {
			case "":
				if int32(r.Value) != c.wantPercent {
					t.Errorf("utilization %v%%, want %d%%", r.Value, c.wantPercent)
				}
			case KindPods:
				// HPA averages milli-values in integers, truncating.
				if got := int64(math.Floor(r.Value*1000 + 1e-6)); got != c.wantUsage {
					t.Errorf("average %d, want %d (milli-units)", got, c.wantUsage)
				}
			case KindPerReplica:
				// HPA reports the per-pod usage rounded up.
				if got := int64(math.Ceil(r.Value*1000 - 1e-6)); got != c.wantUsage {
					t.Errorf("per-replica usage %d, want %d (milli-units)", got, c.wantUsage)
				}
			}
		})
	}
}

func diffNote(diff string, hpaWant int32) string {
	if diff == "" {
		return ""
	}
	return " (HPA gives " + strconv.Itoa(int(hpaWant)) + "; documented difference: " + diff + ")"
}

// groupCase is one TestGroupPods case: pods with their samples, sorted into
// ready, unready, missing and ignored.
type groupCase struct {
	name     string
	resource string
	pods     []groupPod
	// want lists each pod's group in pod order: r ready, u unready, m
	// missing, i ignored.
	want string
}

type groupPod struct {
	phase     string
	deleting  bool
	condition string        // "" no Ready condition, else "True" or "False"
	started   time.Duration // how long ago the pod started; 0: no start time
	changed   time.Duration // how long ago the condition last changed
	sample    bool
	sampled   time.Duration // how long ago the sample was taken
	window    time.Duration
}

var groupPodsCases = []groupCase{
	{name: "TestGroupPods/void", resource: ResourceCPU, want: ""},
	{name: "TestGroupPods/count in a ready pod - memory", resource: ResourceMemory,
		pods: []groupPod{{phase: "Succeeded", sample: true, window: time.Minute}}, want: "r"},
	{name: "TestGroupPods/unready a pod without ready condition - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: time.Nanosecond, sample: true}}, want: "u"},
	{name: "TestGroupPods/count in a ready pod with fresh metrics during initialization period - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: time.Minute, condition: "True", changed: 30 * time.Second, sample: true, window: 30 * time.Second}}, want: "r"},
	{name: "TestGroupPods/unready a ready pod without fresh metrics during initialization period - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: time.Minute, condition: "True", changed: 30 * time.Second, sample: true, window: time.Minute}}, want: "u"},
	{name: "TestGroupPods/unready an unready pod during initialization period - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: 10 * time.Minute, condition: "False", changed: 9*time.Minute + 54*time.Second, sample: true}}, want: "u"},
	{name: "TestGroupPods/count in a ready pod without fresh metrics after initialization period - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: 3 * time.Minute, condition: "True", changed: 3 * time.Minute, sample: true, sampled: 2 * time.Minute, window: time.Minute}}, want: "r"},
	{name: "TestGroupPods/count in an unready pod that was ready after initialization period - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: 10 * time.Minute, condition: "False", changed: 9 * time.Minute, sample: true}}, want: "r"},
	{name: "TestGroupPods/unready pod that has never been ready after initialization period - CPU", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: 10 * time.Minute, condition: "False", changed: 9*time.Minute + 50*time.Second, sample: true}}, want: "r"},
	{name: "TestGroupPods/a missing pod", resource: ResourceCPU,
		pods: []groupPod{{phase: "Succeeded", started: 3 * time.Minute}}, want: "m"},
	{name: "TestGroupPods/several pods", resource: ResourceCPU, pods: []groupPod{
		{phase: "Succeeded", started: time.Nanosecond, sample: true},
		{phase: "Succeeded", started: 3 * time.Minute, condition: "True", changed: 3 * time.Minute, sample: true},
		{phase: "Succeeded", started: 3 * time.Minute},
	}, want: "urm"},
	{name: "TestGroupPods/pending pods are unreadied", resource: ResourceCPU, pods: []groupPod{{phase: PodPending}}, want: "u"},
	{name: "TestGroupPods/ignore pods with deletion timestamps", resource: ResourceCPU,
		pods: []groupPod{{phase: PodPending, deleting: true, sample: true}}, want: "i"},
	{name: "TestGroupPods/ignore pods in a failed state", resource: ResourceCPU,
		pods: []groupPod{{phase: PodFailed, sample: true}}, want: "i"},
}

// Verifies that pods are sorted into ready, unready, missing and ignored as
// HPA's groupPods does, starting pods' CPU samples included.
func TestHPAConformanceGroupPods(t *testing.T) {
	now := anyTime
	for _, c := range groupPodsCases {
		t.Run(c.name, func(t *testing.T) {
			m := podMetric{cpu: c.resource == ResourceCPU, initPeriod: testCPUInitializationPeriod, readinessDelay: testInitialReadinessDelay}
			var got []byte
			for _, gp := range c.pods {
				p := PodSample{Phase: gp.phase, Deleting: gp.deleting, HasMetric: gp.sample, MetricWindow: gp.window}
				if gp.started > 0 {
					p.StartTime = now.Add(-gp.started)
				}
				if gp.condition != "" {
					p.ReadyKnown, p.Ready = true, gp.condition == "True"
					p.ReadyTransition = now.Add(-gp.changed)
				}
				if gp.sample {
					p.MetricTime = now.Add(-gp.sampled)
				}
				got = append(got, "rumi"[m.group(&p, now)])
			}
			if string(got) != c.want {
				t.Errorf("groups %q, want %q (r ready, u unready, m missing, i ignored)", got, c.want)
			}
		})
	}
}

// hcCase is one horizontal_test.go case: an HPA reconciled once, from
// which only the arithmetic is carried over (not the API calls, events or
// metrics recorded around it).
type hcCase struct {
	name               string
	min, max, current  int32
	want               int32
	reason             ScalingLimitedReason // the ScalingLimited condition's reason where upstream checks it; ReasonNone: not checked
	cpuTarget          int32
	levels             []int64 // CPU usage per pod (reportedLevels), millicores; pods past it have no sample
	requests           []int64 // CPU request per pod (reportedCPURequests); nil: current pods of 1000m
	podFixture                 // the pods' readiness, start, phase, deletion
	kind               SignalKind
	metricLevels       []int64 // a custom metric's levels, milli-units
	metricTarget       int64
	failing            bool          // a further metric that cannot be computed
	scaleUp, scaleDown *ScalingRules // the HPA's behavior; both nil: no behavior (legacy)
	diff               string
	hpaWant            int32
}

// The scaling rules upstream's generateScalingRules builds: a Pods policy
// and a Percent policy (each only if its value is not zero), select Max.
func genRules(pods int32, podsPeriod time.Duration, percent int32, percentPeriod, window time.Duration) *ScalingRules {
	r := &ScalingRules{StabilizationWindow: window, SelectPolicy: SelectMax}
	if pods != 0 {
		r.Policies = append(r.Policies, RatePolicy{Type: RatePods, Value: pods, Period: podsPeriod})
	}
	if percent != 0 {
		r.Policies = append(r.Policies, RatePolicy{Type: RatePercent, Value: percent, Period: percentPeriod})
	}
	return r
}

const sec = time.Second

var horizontalCases = []hcCase{
	{name: "TestScaleUp", min: 2, max: 6, current: 3, want: 5, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{300, 500, 700}, requests: []int64{1000, 1000, 1000}},
	{name: "TestScaleUpUnreadyLessScale", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{300, 500, 700}, requests: []int64{1000, 1000, 1000}, podFixture: podFixture{ready: "FTT"}},
	{name: "TestScaleUpHotCpuLessScale", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{300, 500, 700}, requests: []int64{1000, 1000, 1000}, podFixture: podFixture{start: "hcc"}},
	{name: "TestScaleUpUnreadyNoScale", min: 2, max: 6, current: 3, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{400, 500, 700}, requests: []int64{1000, 1000, 1000}, podFixture: podFixture{ready: "TFF"}},
	{name: "TestScaleUpHotCpuNoScale", min: 2, max: 6, current: 3, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{400, 500, 700}, requests: []int64{1000, 1000, 1000}, podFixture: podFixture{ready: "TFF", start: "chh"}},
	{name: "TestScaleUpIgnoresFailedPods", min: 2, max: 6, current: 2, want: 4, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{500, 700}, requests: []int64{1000, 1000, 1000, 1000}, podFixture: podFixture{ready: "TTFF", phase: "RRFF"}},
	{name: "TestScaleUpIgnoresDeletionPods", min: 2, max: 6, current: 2, want: 4, reason: ReasonDesiredWithinRange,
		cpuTarget: 30, levels: []int64{500, 700}, requests: []int64{1000, 1000, 1000, 1000}, podFixture: podFixture{ready: "TTFF", deleting: "--yy"}},
	{name: "TestScaleUpCM", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		requests: []int64{1000, 1000, 1000}, kind: KindPods, metricLevels: []int64{20000, 10000, 30000}, metricTarget: 15000},
	{name: "TestScaleUpCMUnreadyAndHotCpuNoLessScale", min: 2, max: 6, current: 3, want: 6, reason: ReasonDesiredWithinRange,
		requests: []int64{1000, 1000, 1000}, podFixture: podFixture{ready: "TTF", start: "cch"},
		kind: KindPods, metricLevels: []int64{50000, 10000, 30000}, metricTarget: 15000},
	{name: "TestScaleUpCMUnreadyandCpuHot", min: 2, max: 6, current: 3, want: 6, reason: ReasonTooManyReplicas,
		requests: []int64{1000, 1000, 1000}, podFixture: podFixture{ready: "FTF", start: "hch"},
		kind: KindPods, metricLevels: []int64{50000, 15000, 30000}, metricTarget: 15000},
	{name: "TestScaleUpHotCpuNoScaleWouldScaleDown", min: 2, max: 6, current: 3, want: 6, reason: ReasonTooManyReplicas,
		requests: []int64{1000, 1000, 1000}, podFixture: podFixture{start: "hch"},
		kind: KindPods, metricLevels: []int64{50000, 15000, 30000}, metricTarget: 15000},
	{name: "TestScaleUpCMObject", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{20000}, metricTarget: 15000},
	{name: "TestScaleUpFromZeroCMObject", min: 0, max: 6, current: 0, want: 2, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{20000}, metricTarget: 15000},
	{name: "TestScaleUpFromZeroIgnoresToleranceCMObject", min: 0, max: 6, current: 0, want: 1, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{1000}, metricTarget: 1000},
	{name: "TestScaleUpPerPodCMObject", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindPerReplica, metricLevels: []int64{40000}, metricTarget: 10000},
	{name: "TestScaleUpCMExternal", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{8600}, metricTarget: 6666},
	{name: "TestScaleUpPerPodCMExternal", min: 2, max: 6, current: 3, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindPerReplica, metricLevels: []int64{8600}, metricTarget: 2222},
	{name: "TestScaleDown", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000}},
	{name: "TestScaleDownWithScalingRules", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000},
		scaleUp: genRules(0, 0, 100, 15*sec, 30*sec)},
	{name: "TestScaleUpOneMetricInvalid", min: 2, max: 6, current: 3, want: 4,
		cpuTarget: 30, levels: []int64{300, 400, 500}, requests: []int64{1000, 1000, 1000}, failing: true},
	{name: "TestScaleUpFromZeroOneMetricInvalid", min: 0, max: 6, current: 0, want: 4,
		cpuTarget: 30, levels: []int64{300, 400, 500}, requests: []int64{1000, 1000, 1000}, failing: true},
	{name: "TestScaleUpBothMetricsEmpty", min: 2, max: 6, current: 3, want: 3,
		requests: []int64{1000, 1000, 1000}, failing: true},
	{name: "TestScaleUpOneMetricEmpty", min: 2, max: 6, current: 3, want: 4,
		cpuTarget: 30, levels: []int64{300, 400, 500}, requests: []int64{1000, 1000, 1000}, failing: true},
	{name: "TestNoScaleDownOneMetricInvalid", min: 2, max: 6, current: 5, want: 5,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000}, failing: true},
	{name: "TestNoScaleDownOneMetricEmpty", min: 2, max: 6, current: 5, want: 5,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000}, failing: true},
	// Upstream seeds a new HPA's stabilization window with the current
	// count, so its first scale-down waits out the window.
	{name: "TestScaleDownStabilizeInitialSize", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000},
		hpaWant: 5, diff: "no window seeded with the current count on first sight"},
	{name: "TestScaleDownCM", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		requests: []int64{1000, 1000, 1000, 1000, 1000}, kind: KindPods, metricLevels: []int64{12000, 12000, 12000, 12000, 12000}, metricTarget: 20000},
	{name: "TestScaleDownCMObject", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		requests: []int64{1000, 1000, 1000, 1000, 1000}, kind: KindObject, metricLevels: []int64{12000}, metricTarget: 20000},
	{name: "TestScaleDownToZeroCMObject", min: 0, max: 6, current: 5, want: 0, reason: ReasonDesiredWithinRange,
		requests: []int64{1000, 1000, 1000, 1000, 1000}, kind: KindObject, metricLevels: []int64{0}, metricTarget: 20000},
	{name: "TestScaleDownPerPodCMObject", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		requests: []int64{1000, 1000, 1000, 1000, 1000}, kind: KindPerReplica, metricLevels: []int64{60000}, metricTarget: 20000},
	{name: "TestScaleDownCMExternal", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{8600}, metricTarget: 14400},
	{name: "TestScaleDownToZeroCMExternal", min: 0, max: 6, current: 5, want: 0, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{0}, metricTarget: 14400},
	{name: "TestScaleDownPerPodCMExternal", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		kind: KindPerReplica, metricLevels: []int64{8600}, metricTarget: 3000},
	{name: "TestScaleDownIncludeUnreadyPods", min: 2, max: 6, current: 5, want: 2, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000}, podFixture: podFixture{ready: "TTTFF"}},
	{name: "TestScaleDownIgnoreHotCpuPods", min: 2, max: 6, current: 5, want: 2, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000}, podFixture: podFixture{start: "ccchh"}},
	{name: "TestScaleDownIgnoresFailedPods", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000, 1000, 1000},
		podFixture: podFixture{ready: "TTTTTFF", phase: "RRRRRFF"}},
	{name: "TestScaleDownIgnoresDeletionPods", min: 2, max: 6, current: 5, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{100, 300, 500, 250, 250}, requests: []int64{1000, 1000, 1000, 1000, 1000, 1000, 1000},
		podFixture: podFixture{ready: "TTTTTFF", deleting: "-----yy"}},
	{name: "TestTolerance", min: 1, max: 5, current: 3, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 100, levels: []int64{1010, 1030, 1020}, requests: []int64{900, 1000, 1100}},
	{name: "TestToleranceCM", min: 1, max: 5, current: 3, want: 3, reason: ReasonDesiredWithinRange,
		requests: []int64{900, 1000, 1100}, kind: KindPods, metricLevels: []int64{20000, 20001, 21000}, metricTarget: 20000},
	{name: "TestToleranceCMObject", min: 1, max: 5, current: 3, want: 3, reason: ReasonDesiredWithinRange,
		requests: []int64{900, 1000, 1100}, kind: KindObject, metricLevels: []int64{20050}, metricTarget: 20000},
	{name: "TestToleranceCMExternal", min: 2, max: 6, current: 4, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindObject, metricLevels: []int64{8600}, metricTarget: 8666},
	{name: "TestTolerancePerPodCMObject", min: 2, max: 6, current: 4, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindPerReplica, metricLevels: []int64{8600}, metricTarget: 2200},
	{name: "TestTolerancePerPodCMExternal", min: 2, max: 6, current: 4, want: 4, reason: ReasonDesiredWithinRange,
		kind: KindPerReplica, metricLevels: []int64{8600}, metricTarget: 2200},
	{name: "TestMinReplicas", min: 2, max: 5, current: 3, want: 2, reason: ReasonTooFewReplicas,
		cpuTarget: 90, levels: []int64{10, 95, 10}, requests: []int64{900, 1000, 1100}},
	{name: "TestZeroMinReplicasDesiredZero", min: 0, max: 5, current: 3, want: 0, reason: ReasonDesiredWithinRange,
		cpuTarget: 90, levels: []int64{0, 0, 0}, requests: []int64{900, 1000, 1100}},
	{name: "TestMinReplicasDesiredZero", min: 2, max: 5, current: 3, want: 2, reason: ReasonTooFewReplicas,
		cpuTarget: 90, levels: []int64{0, 0, 0}, requests: []int64{900, 1000, 1100}},
	// A target scaled to zero is, to HPA, an HPA switched off.
	{name: "TestZeroReplicas", min: 3, max: 5, current: 0, want: 3,
		cpuTarget: 90, requests: []int64{}, hpaWant: 0, diff: "a target at zero below minReplicas is raised to minReplicas"},
	{name: "TestTooFewReplicas", min: 3, max: 5, current: 2, want: 3, cpuTarget: 90, requests: []int64{}},
	{name: "TestTooManyReplicas", min: 3, max: 5, current: 10, want: 5, cpuTarget: 90, requests: []int64{}},
	{name: "TestMaxReplicas", min: 2, max: 5, current: 3, want: 5, reason: ReasonTooManyReplicas,
		cpuTarget: 90, levels: []int64{8000, 9500, 1000}, requests: []int64{900, 1000, 1100}},
	{name: "TestSuperfluousMetrics", min: 2, max: 6, current: 4, want: 6, reason: ReasonTooManyReplicas, // samples of pods not listed are dropped by the collector
		cpuTarget: 100, levels: []int64{4000, 9500, 3000, 7000}, requests: []int64{1000, 1000, 1000, 1000}},
	{name: "TestMissingMetrics", min: 2, max: 6, current: 4, want: 3, reason: ReasonDesiredWithinRange,
		cpuTarget: 100, levels: []int64{400, 95}, requests: []int64{1000, 1000, 1000, 1000}},
	{name: "TestEmptyMetrics", min: 2, max: 6, current: 4, want: 4,
		cpuTarget: 100, levels: []int64{}, requests: []int64{1000, 1000, 1000, 1000}},
	{name: "TestEmptyCPURequest", min: 1, max: 5, current: 1, want: 1,
		cpuTarget: 100, levels: []int64{200}, requests: []int64{}},
	{name: "TestEventCreated", min: 1, max: 5, current: 1, want: 2, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{200}, requests: []int64{200}},
	{name: "TestEventNotCreated", min: 1, max: 5, current: 2, want: 2, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{200, 200}, requests: []int64{400, 400}},
	// Of 4 replicas only one pod exists, at twice the target: HPA's
	// ceil(2×1) = 2 halves a loaded target.
	{name: "TestMissingReports", min: 1, max: 5, current: 4, want: 4, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{200}, requests: []int64{200},
		hpaWant: 2, diff: "utilization refuses a proposal against the load"},
	{name: "TestUpscaleCap", min: 1, max: 100, current: 3, want: 24, reason: ReasonScaleUpLimit,
		cpuTarget: 10, levels: []int64{100, 200, 300}, requests: []int64{100, 100, 100}, scaleUp: genRules(0, 0, 700, 60*sec, 0)},
	{name: "TestUpscaleCapGreaterThanMaxReplicas", min: 1, max: 20, current: 3, want: 20, reason: ReasonTooManyReplicas,
		cpuTarget: 10, levels: []int64{100, 200, 300}, requests: []int64{100, 100, 100}, scaleUp: genRules(0, 0, 700, 60*sec, 0)},
	// spec.replicas 4 while a rollout surges a fifth pod.
	{name: "TestMoreReplicasThanSpecNoScale", min: 1, max: 8, current: 4, want: 4, reason: ReasonDesiredWithinRange,
		cpuTarget: 50, levels: []int64{500, 500, 500, 500, 500}, requests: []int64{1000, 1000, 1000, 1000, 1000}},
	{name: "TestScaleUpRCImmediately", min: 2, max: 6, current: 1, want: 2,
		levels: []int64{0, 0, 0, 0}, requests: []int64{1000, 1000, 1000, 1000}},
	{name: "TestScaleDownRCImmediately", min: 2, max: 5, current: 6, want: 5,
		cpuTarget: 50, levels: []int64{8000, 9500, 1000}, requests: []int64{900, 1000, 1100}},
}

// service builds the case's HPA as an elmascale service and its snapshot.
func (c hcCase) service(now time.Time) (ServiceSpec, ServiceObservation) {
	s := ServiceSpec{Name: "test-hpa", MinReplicas: c.min, MaxReplicas: c.max, Behavior: LegacyBehavior()}
	if c.scaleUp != nil || c.scaleDown != nil {
		s.Behavior = DefaultBehavior() // what SetDefaults_HorizontalPodAutoscalerBehavior fills in
		if c.scaleUp != nil {
			s.Behavior.ScaleUp = *c.scaleUp
		}
		if c.scaleDown != nil {
			s.Behavior.ScaleDown = *c.scaleDown
		}
	}
	n := int(c.current)
	if c.requests != nil {
		n = len(c.requests)
	}
	pods := make([]PodSample, n)
	for i := range pods {
		pods[i] = c.podFixture.pod(i, now, true, now)
		pods[i].Request = 1000
		if c.requests != nil {
			pods[i].Request = c.requests[i]
		}
	}
	obs := ServiceObservation{Found: true, CurrentReplicas: c.current, ReadyReplicas: readyPods(pods), Signals: map[string]Observation{}}
	if c.cpuTarget > 0 {
		cpu := append([]PodSample(nil), pods...)
		for i := range cpu {
			cpu[i].HasMetric = i < len(c.levels)
			if cpu[i].HasMetric {
				cpu[i].Usage = c.levels[i]
			}
		}
		s.Signals = append(s.Signals, SignalSpec{Name: "cpu", Kind: KindUtilization, Utilization: &UtilizationSpec{Resource: ResourceCPU, TargetPercent: c.cpuTarget,
			CPUInitializationPeriod: testCPUInitializationPeriod, InitialReadinessDelay: testInitialReadinessDelay}})
		obs.Signals["cpu"] = Observation{Status: StatusOK, Time: now, Pods: cpu}
	}
	target := float64(c.metricTarget) / 1000
	var total float64
	for _, l := range c.metricLevels {
		total += float64(l) / 1000
	}
	switch c.kind {
	case KindPods:
		qps := append([]PodSample(nil), pods...)
		for i := range qps {
			qps[i].HasMetric = i < len(c.metricLevels)
			if qps[i].HasMetric {
				qps[i].Value = float64(c.metricLevels[i]) / 1000
			}
		}
		s.Signals = append(s.Signals, SignalSpec{Name: "qps", Kind: KindPods, Pods: &PodsSpec{TargetPerPod: target}})
		obs.Signals["qps"] = Observation{Status: StatusOK, Time: now, Pods: qps}
	case KindObject:
		s.Signals = append(s.Signals, SignalSpec{Name: "qps", Kind: KindObject, Object: &ObjectSpec{Target: target}})
		obs.Signals["qps"] = Observation{Status: StatusOK, Time: now, Value: total}
	case KindPerReplica:
		s.Signals = append(s.Signals, SignalSpec{Name: "qps", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: target}})
		obs.Signals["qps"] = Observation{Status: StatusOK, Time: now, Value: total}
	}
	if c.failing {
		s.Signals = append(s.Signals, SignalSpec{Name: "broken", Kind: KindObject, Object: &ObjectSpec{Target: 1}})
		obs.Signals["broken"] = Observation{Status: StatusFailed, Error: "something went wrong"}
	}
	return s, obs
}

// Verifies whole decisions against the upstream controller tests: the
// replica calculator behind min/max clamping, the legacy scale-up cap of
// an HPA without behavior and its downscale stabilization, rate policies
// of an HPA with behavior, metrics that fail, and the ScalingLimited
// reason where upstream checks it.
func TestHPAConformanceController(t *testing.T) {
	now := anyTime
	for _, c := range horizontalCases {
		t.Run(c.name, func(t *testing.T) {
			s, obs := c.service(now)
			plan, _ := Decide(Spec{Services: []ServiceSpec{s}}, Snapshot{Time: now, Services: map[string]ServiceObservation{s.Name: obs}}, State{}, now)
			d := plan.Decisions[0]
			if d.Desired != c.want {
				t.Errorf("desired %d (%s), want %d%s", d.Desired, d.Reason, c.want, diffNote(c.diff, c.hpaWant))
			}
			if c.reason != ReasonNone && d.ScalingLimited != c.reason {
				t.Errorf("ScalingLimited %q, want %q (%s)", d.ScalingLimited, c.reason, d.Reason)
			}
		})
	}
}

// scaleEvent is a replica change some seconds before now, as upstream's
// timestampedScaleEvent lists them: a positive change, its direction given
// by the list it is in.
type scaleEvent struct {
	change int32
	ago    time.Duration
}

// uniform spreads events over the last period as upstream's
// generateEventsUniformDistribution does: each in the middle of its share
// of the period, whole seconds.
func uniform(changes []int32, period time.Duration) []scaleEvent {
	seg := period.Seconds() / float64(len(changes))
	out := make([]scaleEvent, len(changes))
	for i, c := range changes {
		out[i] = scaleEvent{change: c, ago: time.Duration(int64(period.Seconds()-seg*float64(i+1)+seg/2)) * time.Second}
	}
	return out
}

// events turns scale-up and scale-down lists into elmascale's history.
func events(now time.Time, up, down []scaleEvent) []ScaleEvent {
	var out []ScaleEvent
	for _, e := range up {
		out = append(out, ScaleEvent{Time: now.Add(-e.ago), From: 100, To: 100 + e.change})
	}
	for _, e := range down {
		out = append(out, ScaleEvent{Time: now.Add(-e.ago), From: 100, To: 100 - e.change})
	}
	return out
}

// rateCase is one TestScalingWithRules case: convertDesiredReplicasWithBehaviorRate.
type rateCase struct {
	name               string
	up, down           []scaleEvent
	min, max           int32
	scaleUp, scaleDown *ScalingRules // nil: the autoscaling/v2 default
	current, desired   int32
	want               int32
	reason             ScalingLimitedReason
	// skippedUpstream marks upstream's testThis case, which returns before
	// asserting; its facts hold all the same.
	skippedUpstream bool
}

var (
	events159     = uniform([]int32{1, 5, 9}, 120*sec)
	events081211  = uniform([]int32{8, 12, 9, 11}, 120*sec)
	rateRuleCases = []rateCase{
		{name: "prenormalized desired replicas within range", current: 5, desired: 7, min: 3, max: 8, want: 7, reason: ReasonDesiredWithinRange},
		{name: "prenormalized desired replicas < minReplicas", current: 3, desired: 1, min: 2, max: 8, want: 2, reason: ReasonTooFewReplicas},
		{name: "prenormalized desired replicas within range when minReplicas is 0", current: 1, desired: 0, min: 0, max: 10, want: 0, reason: ReasonDesiredWithinRange},
		{name: "maxReplicas is the limit because maxReplicas < scaleUpLimit", current: 20, desired: 1000, min: 1, max: 10, want: 10, reason: ReasonTooManyReplicas},
		{name: "desired replica count is more than the maximum replica count", current: 100, desired: 1000, min: 100, max: 150, want: 150, reason: ReasonTooManyReplicas},
		{name: "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", current: 3, desired: 1000, min: 1, max: 2000,
			scaleUp: genRules(0, 0, 1, 60*sec, 0), want: 4, reason: ReasonScaleUpLimit},
		{name: "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", current: 1000, desired: 3, min: 3, max: 2000,
			scaleDown: genRules(20, 60*sec, 0, 0, 0), want: 980, reason: ReasonScaleDownLimit, skippedUpstream: true},
		{name: "scaleUp with default behavior", min: 1, max: 1000, current: 10, desired: 50, want: 20, reason: ReasonScaleUpLimit},
		{name: "scaleUp with pods policy larger than percent policy", min: 1, max: 1000, scaleUp: genRules(100, 60*sec, 100, 60*sec, 0),
			current: 10, desired: 500, want: 110, reason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy larger than pods policy", min: 1, max: 1000, scaleUp: genRules(2, 60*sec, 100, 60*sec, 0),
			current: 10, desired: 500, want: 20, reason: ReasonScaleUpLimit},
		{name: "scaleUp with spec MaxReplicas limitation with large pod policy", min: 1, max: 1000, scaleUp: genRules(100, 60*sec, 0, 0, 0),
			current: 10, desired: 50, want: 50, reason: ReasonDesiredWithinRange},
		{name: "scaleUp with spec MaxReplicas limitation with large percent policy", min: 1, max: 1000, scaleUp: genRules(10000, 60*sec, 0, 0, 0),
			current: 10, desired: 50, want: 50, reason: ReasonDesiredWithinRange},
		{name: "scaleUp with pod policy limitation", min: 1, max: 1000, scaleUp: genRules(30, 60*sec, 0, 0, 0),
			current: 10, desired: 50, want: 40, reason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy limitation", min: 1, max: 1000, scaleUp: genRules(0, 0, 200, 60*sec, 0),
			current: 10, desired: 50, want: 30, reason: ReasonScaleUpLimit},
		{name: "scaleDown with percent policy larger than pod policy", min: 1, max: 1000, scaleDown: genRules(20, 60*sec, 1, 60*sec, 300*sec),
			current: 100, desired: 2, want: 80, reason: ReasonScaleDownLimit},
		{name: "scaleDown with pod policy larger than percent policy", min: 1, max: 1000, scaleDown: genRules(2, 60*sec, 1, 60*sec, 300*sec),
			current: 100, desired: 2, want: 98, reason: ReasonScaleDownLimit},
		{name: "scaleDown with spec MinReplicas=nil limitation with large pod policy", min: 1, max: 1000, scaleDown: genRules(100, 60*sec, 0, 0, 300*sec),
			current: 10, desired: 0, want: 1, reason: ReasonTooFewReplicas},
		{name: "scaleDown with spec MinReplicas limitation with large pod policy", min: 1, max: 1000, scaleDown: genRules(100, 60*sec, 0, 0, 300*sec),
			current: 10, desired: 0, want: 1, reason: ReasonTooFewReplicas},
		{name: "scaleDown with spec MinReplicas limitation with large percent policy", min: 5, max: 1000, scaleDown: genRules(0, 0, 100, 60*sec, 300*sec),
			current: 10, desired: 2, want: 5, reason: ReasonTooFewReplicas},
		{name: "scaleDown with pod policy limitation", min: 1, max: 1000, scaleDown: genRules(5, 60*sec, 0, 0, 300*sec),
			current: 10, desired: 2, want: 5, reason: ReasonScaleDownLimit},
		{name: "scaleDown with percent policy limitation", min: 1, max: 1000, scaleDown: genRules(0, 0, 50, 60*sec, 300*sec),
			current: 10, desired: 5, want: 5, reason: ReasonDesiredWithinRange},
		{name: "scaleUp with spec MaxReplicas limitation with large pod policy and events", up: events159, min: 1, max: 200,
			scaleUp: genRules(300, 60*sec, 0, 0, 0), current: 100, desired: 500, want: 200, reason: ReasonTooManyReplicas},
		{name: "scaleUp with spec MaxReplicas limitation with large percent policy and events", up: events159, min: 1, max: 200,
			scaleUp: genRules(0, 0, 10000, 60*sec, 0), current: 100, desired: 500, want: 200, reason: ReasonTooManyReplicas},
		{name: "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events", up: events159, min: 1, max: 1000,
			scaleUp: genRules(5, 120*sec, 0, 0, 0), current: 100, desired: 500, want: 100, reason: ReasonScaleUpLimit},
		{name: "scaleUp with pod policy and previous scale up events", up: events159, min: 1, max: 1000,
			scaleUp: genRules(150, 120*sec, 0, 0, 0), current: 100, desired: 500, want: 235, reason: ReasonScaleUpLimit},
		{name: "scaleUp with percent policy and previous scale up events", up: events159, min: 1, max: 1000,
			scaleUp: genRules(0, 0, 200, 120*sec, 0), current: 100, desired: 500, want: 255, reason: ReasonScaleUpLimit},
		// 6 now, after +4 and −2 within the period: it started at 4, so 300% allows 16.
		{name: "scaleUp with percent policy and previous scale up and down events",
			up: uniform([]int32{4}, 120*sec), down: uniform([]int32{2}, 120*sec), min: 1, max: 1000,
			scaleUp: genRules(0, 0, 300, 300*sec, 0), current: 6, desired: 24, want: 16, reason: ReasonScaleUpLimit},
		{name: "scaleDown with default policy and previous events", down: events159, min: 1, max: 1000,
			current: 10, desired: 5, want: 5, reason: ReasonDesiredWithinRange},
		{name: "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", down: events159, min: 1, max: 1000,
			scaleDown: genRules(115, 120*sec, 0, 0, 300*sec), current: 100, desired: 0, want: 1, reason: ReasonTooFewReplicas},
		{name: "scaleDown with spec MinReplicas limitation with large pod policy and previous events", down: events159, min: 5, max: 1000,
			scaleDown: genRules(130, 120*sec, 0, 0, 300*sec), current: 100, desired: 0, want: 5, reason: ReasonTooFewReplicas},
		{name: "scaleDown with spec MinReplicas limitation with large percent policy and previous events", down: events159, min: 5, max: 1000,
			scaleDown: genRules(0, 0, 100, 120*sec, 300*sec), current: 100, desired: 2, want: 5, reason: ReasonTooFewReplicas},
		{name: "scaleDown with pod policy limitation and previous events", down: events159, min: 1, max: 1000,
			scaleDown: genRules(5, 120*sec, 0, 0, 300*sec), current: 100, desired: 2, want: 100, reason: ReasonScaleDownLimit},
		{name: "scaleDown with percent policy limitation and previous events", down: uniform([]int32{2, 4, 6}, 120*sec), min: 1, max: 1000,
			scaleDown: genRules(0, 0, 50, 120*sec, 300*sec), current: 100, desired: 0, want: 56, reason: ReasonScaleDownLimit},
		// 10 now, after +2 and −4 within the period: it started at 12, so 50% allows 6.
		{name: "scaleDown with percent policy and previous scale up and down events",
			up: uniform([]int32{2}, 120*sec), down: uniform([]int32{4}, 120*sec), min: 1, max: 1000,
			scaleDown: genRules(0, 0, 50, 180*sec, 0), current: 10, desired: 1, want: 6, reason: ReasonScaleDownLimit},
		{name: "scaleDown with previous events preventing further scale down", down: uniform([]int32{10, 10, 10}, 120*sec), min: 1, max: 1000,
			scaleDown: genRules(0, 0, 10, 120*sec, 300*sec), current: 100, desired: 0, want: 100, reason: ReasonScaleDownLimit},
		{name: "scaleDown with with previous events still allowing more scale down", down: uniform([]int32{10, 10, 10}, 120*sec), min: 1, max: 1000,
			scaleDown: genRules(0, 0, 1000, 120*sec, 300*sec), current: 10, desired: 5, want: 5, reason: ReasonDesiredWithinRange},
		{name: "check 'outdated' flag for events for one behavior for up", up: events081211, min: 1, max: 1000,
			scaleUp: genRules(1000, 60*sec, 0, 0, 0), current: 100, desired: 200, want: 200, reason: ReasonDesiredWithinRange},
		{name: "check that events were not marked 'outdated' for two different policies in the behavior for up", up: events081211, min: 1, max: 1000,
			scaleUp: genRules(1000, 120*sec, 100, 60*sec, 0), current: 100, desired: 200, want: 200, reason: ReasonDesiredWithinRange},
		{name: "check that events were marked 'outdated' for two different policies in the behavior for up", up: events081211, min: 1, max: 1000,
			scaleUp: genRules(1000, 30*sec, 100, 60*sec, 0), current: 100, desired: 200, want: 200, reason: ReasonDesiredWithinRange},
		{name: "check 'outdated' flag for events for one behavior for down", down: events081211, min: 1, max: 1000,
			scaleDown: genRules(1000, 60*sec, 0, 0, 300*sec), current: 100, desired: 5, want: 5, reason: ReasonDesiredWithinRange},
		{name: "check that events were not marked 'outdated' for two different policies in the behavior for down", down: events081211, min: 1, max: 1000,
			scaleDown: genRules(1000, 120*sec, 100, 60*sec, 300*sec), current: 100, desired: 5, want: 5, reason: ReasonDesiredWithinRange},
		{name: "check that events were marked 'outdated' for two different policies in the behavior for down", down: events081211, min: 1, max: 1000,
			scaleDown: genRules(1000, 30*sec, 100, 60*sec, 300*sec), current: 100, desired: 5, want: 5, reason: ReasonDesiredWithinRange},
	}
)

// Verifies the rate policies against TestScalingWithRules: Pods and
// Percent policies, Max selection, the bounds with their ScalingLimited
// reasons, and earlier scale events in one or both directions counted from
// the replicas at each period's start.
func TestHPAConformanceScalingWithRules(t *testing.T) {
	now := anyTime
	for _, c := range rateRuleCases {
		t.Run("TestScalingWithRules/"+c.name, func(t *testing.T) {
			b := DefaultBehavior() // GenerateHPAScaleUpRules and GenerateHPAScaleDownRules of nil
			if c.scaleUp != nil {
				b.ScaleUp = *c.scaleUp
			}
			if c.scaleDown != nil {
				b.ScaleDown = *c.scaleDown
			}
			got, _, reason := rateLimit(b, events(now, c.up, c.down), c.desired, c.current, c.min, c.max, now)
			if got != c.want || reason != c.reason {
				t.Errorf("replicas %d (%s), want %d (%s)", got, reason, c.want, c.reason)
			}
		})
	}
}

// Verifies the Min select policy against TestCalculateScaleUpLimitWithScalingRules
// and TestCalculateScaleDownLimitWithBehaviors: the policy allowing the
// smallest change wins in either direction.
func TestHPAConformanceSelectMin(t *testing.T) {
	now := anyTime
	rules := ScalingRules{StabilizationWindow: 300 * sec, SelectPolicy: SelectMin, Policies: []RatePolicy{
		{Type: RatePods, Value: 2, Period: 60 * sec}, {Type: RatePercent, Value: 50, Period: 60 * sec}}}
	if got := scaleUpLimit(rules, nil, 1, now); got != 2 {
		t.Errorf("TestCalculateScaleUpLimitWithScalingRules: limit %d, want 2", got)
	}
	if got := scaleDownLimit(rules, nil, 5, now); got != 3 {
		t.Errorf("TestCalculateScaleDownLimitWithBehaviors: limit %d, want 3", got)
	}
}

// stabilizeCase is one recommendation history and a new recommendation.
type stabilizeCase struct {
	name     string
	history  []scaleEvent // recommendations: change is the replica count
	current  int32
	desired  int32
	up, down time.Duration // windows
	want     int32
}

func history(now time.Time, recs []scaleEvent) []Recommendation {
	out := make([]Recommendation, len(recs))
	for i, r := range recs {
		out[i] = Recommendation{Time: now.Add(-r.ago), Replicas: r.change}
	}
	return out
}

const minute = time.Minute

var stabilizeCases = []stabilizeCase{
	{name: "empty recommendations for scaling down", current: 100, desired: 5, want: 5},
	{name: "simple scale down stabilization", history: []scaleEvent{{4, 2 * minute}, {5, 1 * minute}}, current: 100, desired: 3, down: 3 * minute, want: 5},
	{name: "simple scale up stabilization", history: []scaleEvent{{4, 2 * minute}, {5, 1 * minute}}, current: 1, desired: 7, up: 5 * minute, want: 4},
	{name: "no scale down stabilization", history: []scaleEvent{{1, 2 * minute}, {2, 1 * minute}}, current: 100, desired: 3, up: 5 * minute, want: 3},
	{name: "no scale up stabilization", history: []scaleEvent{{4, 2 * minute}, {5, 1 * minute}}, current: 1, desired: 3, down: 5 * minute, want: 3},
	{name: "no scale down stabilization, reuse recommendation element", history: []scaleEvent{{10, 10 * minute}, {9, 9 * minute}}, current: 100, desired: 3, want: 3},
	{name: "no scale up stabilization, reuse recommendation element", history: []scaleEvent{{10, 10 * minute}, {9, 9 * minute}}, current: 1, desired: 100, want: 100},
	{name: "scale down stabilization, reuse one of obsolete recommendation element",
		history: []scaleEvent{{10, 10 * minute}, {4, 1 * minute}, {5, 2 * minute}, {9, 9 * minute}}, current: 100, desired: 3, down: 3 * minute, want: 5},
	{name: "scale up stabilization, reuse one of obsolete recommendation element",
		history: []scaleEvent{{10, 100 * minute}, {6, 1 * minute}, {5, 2 * minute}, {9, 3 * minute}}, current: 1, desired: 100, up: 300 * sec, want: 5},
	{name: "scale up and down stabilization, do not scale up when prenormalized rec goes down",
		history: []scaleEvent{{2, 100 * minute}, {3, 3 * minute}}, current: 2, desired: 1, up: 300 * sec, down: 300 * sec, want: 2},
	{name: "scale up and down stabilization, do not scale down when prenormalized rec goes up",
		history: []scaleEvent{{2, 100 * minute}, {1, 3 * minute}}, current: 2, desired: 3, up: 300 * sec, down: 300 * sec, want: 2},
}

// Verifies the stabilization windows against TestNormalizeDesiredReplicasWithBehavior:
// a scale-up goes no higher than the lowest, a scale-down no lower than the
// highest recommendation within its window, and neither moves against the
// current count.
func TestHPAConformanceStabilization(t *testing.T) {
	now := anyTime
	for _, c := range stabilizeCases {
		t.Run("TestNormalizeDesiredReplicasWithBehavior/"+c.name, func(t *testing.T) {
			b := Behavior{ScaleUp: ScalingRules{StabilizationWindow: c.up}, ScaleDown: ScalingRules{StabilizationWindow: c.down}}
			if got := stabilize(b, history(now, c.history), c.desired, c.current, now); got != c.want {
				t.Errorf("stabilized %d, want %d", got, c.want)
			}
		})
	}
}

// legacyStabilizeCases are TestNormalizeDesiredReplicas: the downscale
// stabilization of an HPA without behavior, over the controller's default
// 5 minute window.
var legacyStabilizeCases = []stabilizeCase{
	{name: "empty log", desired: 5, want: 5},
	{name: "stabilize", history: []scaleEvent{{4, 2 * minute}, {5, 1 * minute}}, desired: 3, want: 5},
	{name: "no stabilize", history: []scaleEvent{{1, 2 * minute}, {2, 1 * minute}}, desired: 3, want: 3},
	{name: "no stabilize - old recommendations", history: []scaleEvent{{10, 10 * minute}, {9, 9 * minute}}, desired: 3, want: 3},
	{name: "stabilize - old recommendations", history: []scaleEvent{{10, 10 * minute}, {4, 1 * minute}, {5, 2 * minute}, {9, 9 * minute}}, desired: 3, want: 5},
}

// legacyLimitCases are TestConvertDesiredReplicasWithRules: the bounds and
// the scale-up cap of an HPA without behavior.
var legacyLimitCases = []struct {
	name                       string
	current, desired, min, max int32
	want                       int32
	reason                     ScalingLimitedReason
}{
	{name: "prenormalized desired replicas within range", current: 5, desired: 7, min: 3, max: 8, want: 7, reason: ReasonDesiredWithinRange},
	{name: "prenormalized desired replicas < minReplicas", current: 3, desired: 1, min: 2, max: 8, want: 2, reason: ReasonTooFewReplicas},
	{name: "prenormalized desired zeroed replicas within range", current: 1, desired: 0, min: 0, max: 10, want: 0, reason: ReasonDesiredWithinRange},
	{name: "maxReplicas is the limit because maxReplicas < scaleUpLimit", current: 20, desired: 1000, min: 1, max: 10, want: 10, reason: ReasonTooManyReplicas},
	// Upstream expects calculateScaleUpLimit(3), which its test file raises
	// to 8×3 with an init(); the controller's factor of 2 gives max(2×3, 4).
	{name: "scaleUpLimit is the limit because scaleUpLimit < maxReplicas", current: 3, desired: 1000, min: 1, max: 2000, want: 6, reason: ReasonScaleUpLimit},
}

// Verifies the legacy path of an HPA without behavior against
// TestNormalizeDesiredReplicas and TestConvertDesiredReplicasWithRules.
func TestHPAConformanceLegacy(t *testing.T) {
	now := anyTime
	for _, c := range legacyStabilizeCases {
		t.Run("TestNormalizeDesiredReplicas/"+c.name, func(t *testing.T) {
			if got := legacyStabilize(history(now, c.history), c.desired, LegacyBehavior().ScaleDown.StabilizationWindow, now); got != c.want {
				t.Errorf("stabilized %d, want %d", got, c.want)
			}
		})
	}
	for _, c := range legacyLimitCases {
		t.Run("TestConvertDesiredReplicasWithRules/"+c.name, func(t *testing.T) {
			got, _, reason := legacyLimit(c.current, c.desired, c.min, c.max)
			if got != c.want || reason != c.reason {
				t.Errorf("replicas %d (%s), want %d (%s)", got, reason, c.want, c.reason)
			}
		})
	}
}

// storeCase is one TestStoreScaleEvents case: a change of 5 replicas (up
// from 10, or down from 10) stored over earlier events.
type storeCase struct {
	name  string
	prev  []scaleEvent
	rules *ScalingRules // nil: no behavior
	// wantChange is what the earlier events changed within 60 seconds;
	// wantKept are the changes upstream still counts afterwards (those not
	// marked outdated), in any order.
	wantChange int32
	wantKept   []int32
	diff       string
}

var storeCases = []storeCase{
	{name: "empty entries with default behavior", wantKept: nil},
	{name: "empty entries with two-policy-behavior", rules: genRules(10, 60*sec, 100, 60*sec, 0), wantKept: []int32{5}},
	{name: "one outdated entry to be kept untouched without behavior", prev: []scaleEvent{{7, 61 * sec}}, wantKept: nil,
		diff: "without behavior no event is kept: upstream leaves the old one untouched, and counts neither"},
	{name: "one outdated entry to be replaced with behavior", prev: []scaleEvent{{7, 61 * sec}},
		rules: genRules(10, 60*sec, 100, 60*sec, 0), wantKept: []int32{5}},
	{name: "one actual entry to be not touched with behavior", prev: []scaleEvent{{7, 58 * sec}},
		rules: genRules(10, 60*sec, 100, 60*sec, 0), wantChange: 7, wantKept: []int32{7, 5}},
	{name: "two entries, one of them to be replaced", prev: []scaleEvent{{7, 61 * sec}, {6, 59 * sec}},
		rules: genRules(10, 60*sec, 0, 0, 0), wantChange: 6, wantKept: []int32{5, 6}},
	{name: "replace one entry, use policies with different periods", prev: []scaleEvent{{8, 29 * sec}, {6, 59 * sec}, {7, 61 * sec}, {9, 61 * sec}},
		rules: genRules(10, 60*sec, 100, 30*sec, 0), wantChange: 14, wantKept: []int32{8, 6, 5}},
	{name: "two entries, both actual", prev: []scaleEvent{{7, 58 * sec}, {6, 59 * sec}},
		rules: genRules(10, 120*sec, 100, 30*sec, 0), wantChange: 13, wantKept: []int32{7, 6, 5}},
}

// Verifies against TestStoreScaleEvents that an applied change is stored
// and that events older than every policy's period are forgotten, in both
// directions. Upstream marks such events outdated and reuses their slots;
// elmascale drops them, which leaves the same events counted.
func TestHPAConformanceStoreScaleEvents(t *testing.T) {
	now := anyTime
	for _, c := range storeCases {
		for _, up := range []bool{true, false} {
			dir := "/up"
			if !up {
				dir = "/down"
			}
			t.Run("TestStoreScaleEvents/"+c.name+dir, func(t *testing.T) {
				b := LegacyBehavior()
				var prev []ScaleEvent
				to := int32(15)
				if up {
					prev = events(now, c.prev, nil)
				} else {
					prev, to = events(now, nil, c.prev), 5
				}
				if c.rules != nil {
					b = Behavior{}
					if up {
						b.ScaleUp = *c.rules
					} else {
						b.ScaleDown = *c.rules
					}
				}
				added, removed := changesInPeriod(prev, 60*sec, now)
				if got := added + removed; got != c.wantChange {
					t.Errorf("changed %d within 60s, want %d", got, c.wantChange)
				}
				st := carryHistory(ServiceState{Events: prev, LastCurrent: 10, LastSeen: true, Pending: &ScaleEvent{Time: now, From: 10, To: to}},
					ServiceObservation{Found: true, CurrentReplicas: to}, b, now)
				var kept []int32
				for _, e := range st.Events {
					kept = append(kept, max(e.To-e.From, e.From-e.To))
				}
				slices.Sort(kept)
				want := slices.Clone(c.wantKept)
				slices.Sort(want)
				if !slices.Equal(kept, want) {
					t.Errorf("kept %v, want %v", kept, want)
				}
			})
		}
	}
}

// Verifies the conformance table is as large as promised and that every
// documented difference is marked with upstream's own expectation.
func TestHPAConformanceTable(t *testing.T) {
	n := len(replicaCalcCases) + len(groupPodsCases) + len(horizontalCases) + len(rateRuleCases) + 2 +
		len(stabilizeCases) + len(legacyStabilizeCases) + len(legacyLimitCases) + len(storeCases)
	if n < 100 {
		t.Errorf("%d conformance cases, want at least 100", n)
	}
	t.Logf("%d conformance cases", n)
	for _, c := range replicaCalcCases {
		if c.diff != "" && c.hpaWant == c.want {
			t.Errorf("%s: marked as a difference but expects upstream's %d", c.name, c.want)
		}
	}
	for _, c := range horizontalCases {
		if c.diff != "" && c.hpaWant == c.want {
			t.Errorf("%s: marked as a difference but expects upstream's %d", c.name, c.want)
		}
	}
}
