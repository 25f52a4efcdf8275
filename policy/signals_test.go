package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

func signalProposal(t *testing.T, sig SignalSpec, obs Observation, current int32) SignalResult {
	t.Helper()
	r, _ := evaluateSignal(sig, obs, true, signalContext{current: current, ready: current, tol: tolerances{0.1, 0.1}, staleAfter: time.Minute, snapTime: anyTime, now: anyTime})
	return r
}

// Verifies the HPA replica calculator semantics for resource utilization.
func TestUtilizationFollowsHPA(t *testing.T) {
	young := func(p PodSample) PodSample {
		p.StartTime = anyTime.Add(-time.Minute)
		p.ReadyTransition = anyTime.Add(-30 * time.Second)
		p.MetricTime = anyTime.Add(-20 * time.Second) // before readiness + window
		return p
	}
	missing := func(p PodSample) PodSample { p.HasMetric = false; p.Usage = 0; return p }
	pending := func(p PodSample) PodSample { p.Phase = PodPending; p.HasMetric = false; return p }
	cases := []struct {
		name    string
		pods    []PodSample
		current int32
		want    int32
		invalid bool
	}{
		{name: "scales up on ready pods", pods: runningPods(3, 800, 1000), current: 3, want: 5},
		{name: "within tolerance keeps current", pods: runningPods(3, 530, 1000), current: 3, want: 3},
		{name: "scales down on ready pods", pods: runningPods(4, 100, 1000), current: 4, want: 1},
		{
			// Naively ceil(0.2*3)=1; the missing pod is assumed at 100% of its request.
			name:    "missing pod counts as full request on scale-down",
			pods:    append(runningPods(3, 100, 1000), missing(runningPods(1, 0, 1000)[0])),
			current: 4, want: 3,
		},
		{
			// 180% on the measured pods, but counting the two missing pods as idle
			// gives 45%: the direction would flip, so HPA keeps current.
			name:    "missing pods counted as idle may not flip a scale-up",
			pods:    append(runningPods(2, 900, 1000), missing(runningPods(1, 0, 1000)[0]), missing(runningPods(1, 0, 1000)[0])),
			current: 4, want: 4,
		},
		{
			// Naively ceil(1.2*2)=3, a scale-down while load is above target.
			name:    "pending pods count as idle on scale-up and a flip is refused",
			pods:    append(runningPods(2, 600, 1000), pending(runningPods(1, 0, 1000)[0]), pending(runningPods(1, 0, 1000)[0])),
			current: 4, want: 4,
		},
		{
			// The young pod's sample predates its readiness: only the old pod counts.
			name:    "initialising pod's CPU is ignored",
			pods:    append(runningPods(1, 300, 1000), young(runningPods(1, 1000, 1000)[0])),
			current: 2, want: 1,
		},
		{
			name: "failed and deleting pods are ignored",
			pods: func() []PodSample {
				p := runningPods(4, 800, 1000)
				p[2].Phase = PodFailed
				p[3].Deleting = true
				return p
			}(),
			current: 4, want: 4, // 2 pods at 160% → ceil(3.2)=4
		},
		{name: "pod without request is invalid", pods: runningPods(2, 500, 0), current: 2, invalid: true},
		{name: "no pods is invalid", pods: nil, current: 2, invalid: true},
		{name: "negative usage is invalid", pods: runningPods(2, -5, 1000), current: 2, invalid: true},
		// usage×100 would wrap to a negative number: read as no load, it
		// would scale the service down.
		{name: "usage beyond any pod's is invalid, not a wrapped 0%", pods: runningPods(2, 1<<62, 1000), current: 4, invalid: true},
		{name: "a request beyond any pod's is invalid", pods: runningPods(2, 500, 1<<62), current: 4, invalid: true},
		{name: "sums beyond int64 are invalid", pods: runningPods(600, maxPodAmount, maxPodAmount), current: 4, invalid: true},
		{name: "large but real amounts still count", pods: runningPods(4, 96<<30, 64<<30), current: 4, want: 12}, // 150% of 64 GiB requests against 50%
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := signalProposal(t, cpuSignal("cpu", 50), podsObs(tc.pods), tc.current)
			if tc.invalid {
				if r.Status != StatusInvalid {
					t.Fatalf("status = %s, want invalid (note %q)", r.Status, r.Note)
				}
				return
			}
			if r.Status != StatusOK || r.Proposal != tc.want {
				t.Fatalf("proposal = %d (%s: %s), want %d", r.Proposal, r.Status, r.Note, tc.want)
			}
		})
	}
}

// Verifies that queue sizing keeps up with arrivals and drains the backlog
// using measured throughput.
func TestQueueDrainsBacklogWithMeasuredThroughput(t *testing.T) {
	cases := []struct {
		name    string
		q       QueueObservation
		cfg     float64 // configured per-replica throughput
		current int32
		want    int32
		invalid bool
	}{
		{
			// Saturated: 4/s over 2 replicas = 2/s each; need 2 + 600/60 = 12/s at 80% of 2/s → 7.5.
			name: "saturated queue uses completions per replica",
			q:    QueueObservation{Backlog: 600, ArrivalRate: 2, CompletionRate: 4},
			cfg:  10, current: 2, want: 8,
		},
		{
			// Idle: completions understate capacity, so the configured 5/s wins: 1/(0.8*5) → 1.
			name: "idle queue trusts the configured estimate",
			q:    QueueObservation{Backlog: 0, ArrivalRate: 1, CompletionRate: 1},
			cfg:  5, current: 2, want: 1,
		},
		{
			name: "source-measured capacity wins",
			q:    QueueObservation{ArrivalRate: 40, CompletionRate: 40, ThroughputPerReplica: 10},
			cfg:  1, current: 2, want: 5,
		},
		{
			name: "within tolerance keeps current",
			q:    QueueObservation{ArrivalRate: 12.5, CompletionRate: 12.5, ThroughputPerReplica: 4},
			cfg:  0, current: 4, want: 4, // 12.5/3.2 = 3.9
		},
		{
			name:    "backlog with nothing completing is unknown, not zero",
			q:       QueueObservation{Backlog: 50, ArrivalRate: 1},
			current: 2, invalid: true,
		},
		{name: "backlog with no replicas starts one", q: QueueObservation{Backlog: 10}, current: 0, want: 1},
		{name: "NaN backlog is invalid", q: QueueObservation{Backlog: math.NaN()}, cfg: 1, current: 2, invalid: true},
		{name: "negative rate is invalid", q: QueueObservation{ArrivalRate: -1}, cfg: 1, current: 2, invalid: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := signalProposal(t, queueSignal("q", time.Minute, tc.cfg), queueObs(tc.q), tc.current)
			if tc.invalid {
				if r.Status != StatusInvalid {
					t.Fatalf("status = %s, proposal %d, want invalid", r.Status, r.Proposal)
				}
				return
			}
			if r.Status != StatusOK || r.Proposal != tc.want {
				t.Fatalf("proposal = %d (%s: %s), want %d", r.Proposal, r.Status, r.Note, tc.want)
			}
		})
	}
}

// Verifies that a queue signal's value and target are throughputs whose
// ratio is how far the pool is short, and that an overrun queue (arrivals
// alone beyond what the replicas handle) keeps a target above zero.
func TestQueueValueAndTargetAreThroughputs(t *testing.T) {
	// 2 replicas measured at 2/s each, planned at 80%: 3.2/s. Arrivals of
	// 10/s overrun them; with 600 waiting over a 60s drain time the pool
	// needs 10 + 10 = 20/s, 6.25 times what it has.
	r := signalProposal(t, queueSignal("q", time.Minute, 0), queueObs(QueueObservation{Backlog: 600, ArrivalRate: 10, CompletionRate: 4}), 2)
	if r.Status != StatusOK {
		t.Fatalf("status %s (%s)", r.Status, r.Note)
	}
	if math.Abs(r.Value-20) > 1e-9 || math.Abs(r.Target-3.2) > 1e-9 {
		t.Errorf("value %v, target %v: want 20/s needed against 3.2/s available", r.Value, r.Target)
	}
	if want := int32(math.Ceil(2 * r.Value / r.Target)); r.Proposal != want {
		t.Errorf("proposal %d, want %d (current × value ÷ target)", r.Proposal, want)
	}
}

// Verifies that an absurd but valid number reads as four significant
// digits in a note, never as hundreds of digits or an overflowed integer.
func TestNotesKeepNumbersShort(t *testing.T) {
	q := signalProposal(t, queueSignal("q", time.Minute, 0), queueObs(QueueObservation{Backlog: 1e308, CompletionRate: 4}), 2)
	if !strings.Contains(q.Note, "backlog 1e+308,") {
		t.Errorf("queue note %q: want the backlog as 1e+308", q.Note)
	}
	l := signalProposal(t, latencySignal("p95", time.Second), ok(1e300), 2)
	if !strings.Contains(l.Note, "latency 1e+300s") {
		t.Errorf("latency note %q: want 1e+300s", l.Note)
	}
	for _, n := range []string{q.Note, l.Note} {
		if len(n) > 160 || strings.Contains(n, "-9223372036854775808") {
			t.Errorf("note %q is not short and sound", n)
		}
	}
	// Ordinary numbers read as they always did.
	for _, c := range []struct {
		v    float64
		dec  int
		want string
	}{{2.4, 2, "2.40"}, {19.77, 2, "19.77"}, {123.456, 2, "123.5"}, {4821.3, 2, "4821"}, {654321.4, 0, "654321"}, {1234567, 2, "1.235e+06"}, {math.Inf(1), 0, "+Inf"}} {
		if got := fixedNum(c.v, c.dec); got != c.want {
			t.Errorf("fixedNum(%v, %d) = %q, want %q", c.v, c.dec, got, c.want)
		}
	}
	for v, want := range map[float64]string{89.7: "89", 999999: "999999", 2e20: "2e+20"} {
		if got := wholeNum(v); got != want {
			t.Errorf("wholeNum(%v) = %q, want %q", v, got, want)
		}
	}
}

// Verifies latency scales up in proportion and down one replica at a time.
func TestLatencyProposals(t *testing.T) {
	cases := []struct {
		name    string
		seconds float64
		want    int32
	}{
		{"twice the SLO doubles", 1.0, 8},
		{"just over the SLO adds at least one", 0.58, 5},
		{"within tolerance holds", 0.52, 4},
		{"well below lets go of one replica", 0.05, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := signalProposal(t, latencySignal("p95", 500*time.Millisecond), ok(tc.seconds), 4)
			if r.Proposal != tc.want {
				t.Fatalf("proposal = %d (%s), want %d", r.Proposal, r.Note, tc.want)
			}
		})
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.2} {
		r := signalProposal(t, latencySignal("p95", time.Second), ok(bad), 4)
		if r.Status != StatusInvalid {
			t.Errorf("latency %v: status %s, want invalid", bad, r.Status)
		}
	}
}

// Verifies KEDA AverageValue and HPA Object Value arithmetic.
func TestPerReplicaAndObject(t *testing.T) {
	pr := SignalSpec{Name: "inflight", Kind: KindPerReplica, PerReplica: &PerReplicaSpec{TargetPerReplica: 100}}
	if r := signalProposal(t, pr, ok(450), 2); r.Proposal != 5 || r.Value != 225 {
		t.Errorf("perReplica 450/100: proposal %d value %v, want 5 and 225", r.Proposal, r.Value)
	}
	if r := signalProposal(t, pr, ok(210), 2); r.Proposal != 2 {
		t.Errorf("perReplica within tolerance: proposal %d, want 2", r.Proposal)
	}
	obj := SignalSpec{Name: "lag", Kind: KindObject, Object: &ObjectSpec{Target: 100}}
	if r := signalProposal(t, obj, ok(150), 4); r.Proposal != 6 {
		t.Errorf("object 150/100 on 4: proposal %d, want 6", r.Proposal)
	}
}

// Verifies that observations that cannot be trusted are never used.
func TestUnusableObservations(t *testing.T) {
	sig := latencySignal("p95", time.Second)
	stale := ok(5)
	stale.Time = anyTime.Add(-2 * time.Minute)
	cases := []struct {
		name string
		obs  Observation
		seen bool
		want ObservationStatus
	}{
		{"absent", Observation{}, false, StatusMissing},
		{"failed source", Observation{Status: StatusFailed, Error: "breaker open"}, true, StatusFailed},
		{"stale sample", stale, true, StatusStale},
		{"NaN", ok(math.NaN()), true, StatusInvalid},
	}
	for _, tc := range cases {
		r, _ := evaluateSignal(sig, tc.obs, tc.seen, signalContext{current: 3, ready: 3, tol: tolerances{0.1, 0.1}, staleAfter: time.Minute, snapTime: anyTime, now: anyTime})
		if r.Status != tc.want || r.Proposal != 0 {
			t.Errorf("%s: status %s proposal %d, want %s and no proposal", tc.name, r.Status, r.Proposal, tc.want)
		}
		if r.Note == "" {
			t.Errorf("%s: no note explains it", tc.name)
		}
	}
	if r, _ := evaluateSignal(sig, Observation{Status: StatusFailed, Error: "prometheus: timeout"}, true, signalContext{current: 3, ready: 3, tol: tolerances{0.1, 0.1}, snapTime: anyTime, now: anyTime}); !strings.Contains(r.Note, "timeout") {
		t.Errorf("failed note %q should carry the source's error", r.Note)
	}
}

// Verifies messages delivered but not acknowledged count as work in
// progress, not as waiting: a pool keeping up is not mistaken for a
// saturated one, whose completions would understate capacity.
func TestQueueInProgressIsNotWaiting(t *testing.T) {
	sig := queueSignal("q", time.Minute, 4)
	busy := QueueObservation{Backlog: 40, Unacked: 40, ArrivalRate: 2, CompletionRate: 2}
	if r := signalProposal(t, sig, queueObs(busy), 2); r.Proposal != 1 || !strings.Contains(r.Note, "configured") {
		t.Errorf("keeping up: proposal %d (%s), want 1 from the configured 4/s", r.Proposal, r.Note)
	}
	busy.Unacked = 0 // a source that cannot tell: all of it counts as waiting
	if r := signalProposal(t, sig, queueObs(busy), 2); r.Proposal <= 2 {
		t.Errorf("unknown in-progress share: proposal %d, want the measured 1/s per replica to ask for more", r.Proposal)
	}
}

// Verifies one latency breach at most doubles replicas.
func TestLatencyStepIsCapped(t *testing.T) {
	r := signalProposal(t, latencySignal("p95", 100*time.Millisecond), ok(10), 4)
	if r.Proposal != 8 {
		t.Errorf("100× the SLO: proposal %d, want 8 (twice 4)", r.Proposal)
	}
}

// Verifies a few messages left waiting by a burst do not count as
// saturation: completions then understate capacity.
func TestQueueBurstIsNotSaturation(t *testing.T) {
	sig := queueSignal("q", time.Minute, 4)
	burst := QueueObservation{Backlog: 5, ArrivalRate: 1, CompletionRate: 1} // 5 s of waiting work at 1/s: under 6 s
	if r := signalProposal(t, sig, queueObs(burst), 2); !strings.Contains(r.Note, "configured") {
		t.Errorf("burst: %s, want the configured throughput", r.Note)
	}
	burst.Backlog = 60 // a minute of waiting work: the pool is the limit
	if r := signalProposal(t, sig, queueObs(burst), 2); !strings.Contains(r.Note, "measured") {
		t.Errorf("long wait: %s, want measured throughput", r.Note)
	}
}
