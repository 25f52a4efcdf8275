package record

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

var epoch = time.Unix(0, 0).UTC()

func tick(decisions []policy.Decision, outcomes []loop.Outcome, handedOff map[string]string) loop.Tick {
	return loop.Tick{Time: epoch, Plan: policy.Plan{Decisions: decisions}, Outcomes: outcomes, HandedOff: handedOff,
		Steps: map[string]time.Duration{loop.StepObserve: time.Millisecond}}
}

// Verifies the metrics recorded from ticks, and that label sets of services
// and signals that went away are deleted rather than left at a stale value.
func TestMetricsRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, true, "v1.2.3")
	sig := policy.SignalResult{Name: "cpu", Kind: policy.KindUtilization, Status: policy.StatusOK, Value: 90, Target: 70}
	m.Record(tick([]policy.Decision{
		{Service: "worker", Current: 2, Ready: 2, Desired: 3, Bottleneck: true, Signals: []policy.SignalResult{sig}},
		{Service: "main", Current: 2, Ready: 1, Desired: 2},
	}, []loop.Outcome{{Service: "worker", Applied: true}}, map[string]string{"main": "HorizontalPodAutoscaler/main"}))

	want := `
# HELP elmascale_replicas_recommended Replicas recommended for the service in dry-run mode (never written).
# TYPE elmascale_replicas_recommended gauge
elmascale_replicas_recommended{service="main"} 2
elmascale_replicas_recommended{service="worker"} 3
# HELP elmascale_signal_value Last usable value of a signal, in the signal's unit: percent (utilization), seconds (latency), messages per second (queue: the throughput needed to keep up and drain the backlog), the metric's unit otherwise.
# TYPE elmascale_signal_value gauge
elmascale_signal_value{kind="utilization",service="worker",signal="cpu"} 90
# HELP elmascale_handoffs 1 while another owner scales the service's target. owner: HorizontalPodAutoscaler, ScaledObject, paused.
# TYPE elmascale_handoffs gauge
elmascale_handoffs{owner="HorizontalPodAutoscaler",service="main"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "elmascale_replicas_recommended", "elmascale_signal_value", "elmascale_handoffs"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.scaleActions.WithLabelValues("worker", "up", "none")); got != 1 {
		t.Errorf("scale actions = %v, want 1", got)
	}

	// Next tick: main is gone from the config, worker's signal is missing.
	sig.Status = policy.StatusMissing
	m.Record(tick([]policy.Decision{{Service: "worker", Current: 3, Desired: 3, Signals: []policy.SignalResult{sig}}}, nil, nil))
	if n := testutil.CollectAndCount(m.signalValue); n != 0 {
		t.Errorf("signal_value series = %d, want 0 once the signal is missing", n)
	}
	if n := testutil.CollectAndCount(m.handoffs); n != 0 {
		t.Errorf("handoffs series = %d, want 0", n)
	}
	if n := testutil.CollectAndCount(m.current); n != 1 {
		t.Errorf("replicas_current series = %d, want 1 (main removed)", n)
	}
	if got := testutil.ToFloat64(m.ticks); got != 2 {
		t.Errorf("ticks = %v, want 2", got)
	}
}

// Verifies the decisions ring keeps the last ticks in order, within its
// bound on decisions, and classifies outcomes.
func TestHistoryRing(t *testing.T) {
	h := NewHistory("apply", 2)
	for i := int32(1); i <= 3; i++ {
		h.Record(tick([]policy.Decision{{Service: "worker", Current: i, Desired: i + 1}},
			[]loop.Outcome{{Service: "worker", Applied: i != 2, Err: map[bool]error{true: errors.New("boom")}[i == 2]}}, nil))
	}
	got := h.Decisions("")
	if len(got) != 2 || got[0].Current != 2 || got[1].Current != 3 {
		t.Fatalf("ring = %+v, want ticks 2 and 3 in order", got)
	}
	if got[0].Outcome != "failed" || got[0].Detail != "boom" || got[1].Outcome != "applied" {
		t.Errorf("outcomes = %q/%q, %q", got[0].Outcome, got[0].Detail, got[1].Outcome)
	}
	if recs := h.Recommendations(); len(recs) != 1 || recs[0].Recommended != 4 {
		t.Errorf("recommendations = %+v", recs)
	}
	if len(h.Decisions("main")) != 0 {
		t.Errorf("filter by service returned other services")
	}
}

// Verifies that liveness fails after five intervals without a tick.
func TestHealthTiedToProgress(t *testing.T) {
	now := epoch
	h := NewHealth(func() time.Time { return now }, func() time.Duration { return 10 * time.Second })
	if ok, _ := h.Ready(); ok {
		t.Errorf("ready before the first tick")
	}
	now = now.Add(49 * time.Second)
	if ok, msg := h.Live(); !ok {
		t.Errorf("not live within 5 intervals: %s", msg)
	}
	now = now.Add(2 * time.Second)
	if ok, _ := h.Live(); ok {
		t.Errorf("live after 51s without a tick at a 10s interval")
	}
	h.Record(loop.Tick{})
	if ok, _ := h.Live(); !ok {
		t.Errorf("not live right after a tick")
	}
	if ok, _ := h.Ready(); !ok {
		t.Errorf("not ready after a tick")
	}
}
