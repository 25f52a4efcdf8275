package loop

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

var epoch = time.Unix(0, 0).UTC()

const testConfig = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
metrics:
  inflight: {prometheus: {query: "sum by (service) (inflight)"}}
services:
  worker:
    minReplicas: 1
    maxReplicas: 10
    behavior: {scaleUp: {stabilizationWindow: 0s}, scaleDown: {stabilizationWindow: 0s}}
    signals:
      - name: inflight
        perReplica: {metric: inflight, targetPerReplica: 10}
  main:
    minReplicas: 1
    maxReplicas: 10
    behavior: {scaleUp: {stabilizationWindow: 0s}, scaleDown: {stabilizationWindow: 0s}}
    signals:
      - name: inflight
        perReplica: {metric: inflight, targetPerReplica: 10}
`

func testCfg(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakeCollector returns fixed signals or an error.
type fakeCollector struct {
	signals Signals
	err     error
}

func (f fakeCollector) Collect(context.Context, *config.Config, time.Time) (Signals, error) {
	return f.signals, f.err
}

// fakeScaler reports fixed targets and remembers every plan it was given.
type fakeScaler struct {
	targets map[string]TargetStatus
	err     error
	applied []policy.Plan
}

func (f *fakeScaler) Observe(context.Context, *config.Config) (map[string]TargetStatus, error) {
	return f.targets, f.err
}

func (f *fakeScaler) Apply(_ context.Context, _ *config.Config, plan policy.Plan) []Outcome {
	f.applied = append(f.applied, plan)
	out := make([]Outcome, 0, len(plan.Decisions))
	for _, d := range plan.Decisions {
		out = append(out, Outcome{Service: d.Service, Applied: d.Desired != d.Current})
	}
	return out
}

type countRecorder struct{ n int }

func (c *countRecorder) Record(Tick) { c.n++ }

type panicRecorder struct{}

func (panicRecorder) Record(Tick) { panic("recorder bug") }

func inflight(v float64) map[string]policy.Observation {
	return map[string]policy.Observation{"inflight": {Status: policy.StatusOK, Value: v, Time: epoch}}
}

func decision(t *testing.T, tk Tick, service string) policy.Decision {
	t.Helper()
	for _, d := range tk.Plan.Decisions {
		if d.Service == service {
			return d
		}
	}
	t.Fatalf("no decision for %s in %+v", service, tk.Plan.Decisions)
	return policy.Decision{}
}

// Verifies the tick's handling of every step's failure and of hand-offs,
// with small fakes on both sides of the loop.
func TestRunOnce(t *testing.T) {
	two := map[string]TargetStatus{"worker": {Found: true, Current: 2, Ready: 2}, "main": {Found: true, Current: 2, Ready: 2}}
	loaded := Signals{"worker": inflight(60), "main": inflight(20)}
	cases := []struct {
		name      string
		collector Collector
		scaler    *fakeScaler
		check     func(t *testing.T, tk Tick, sc *fakeScaler)
	}{{
		name:      "healthy tick scales the loaded service and applies the plan",
		collector: fakeCollector{signals: loaded},
		scaler:    &fakeScaler{targets: two},
		check: func(t *testing.T, tk Tick, sc *fakeScaler) {
			if tk.Err != nil || len(sc.applied) != 1 {
				t.Fatalf("err %v, %d applies; want none and one", tk.Err, len(sc.applied))
			}
			if d := decision(t, tk, "worker"); d.Desired != 6 {
				t.Errorf("worker desired %d, want 6 (60 in flight / 10 per replica)", d.Desired)
			}
			for _, step := range []string{StepObserve, StepCollect, StepDecide, StepApply} {
				if _, ok := tk.Steps[step]; !ok {
					t.Errorf("step %s not timed", step)
				}
			}
		},
	}, {
		name:      "observe fails: every service holds and Apply is not called",
		collector: fakeCollector{signals: loaded},
		scaler:    &fakeScaler{targets: two, err: errors.New("api server down")},
		check: func(t *testing.T, tk Tick, sc *fakeScaler) {
			if len(sc.applied) != 0 {
				t.Errorf("Apply called %d times after a failed observe", len(sc.applied))
			}
			if tk.StepErrors[StepObserve] == nil || !strings.Contains(tk.Err.Error(), "api server down") {
				t.Errorf("observe error not reported: %v", tk.Err)
			}
			for _, d := range tk.Plan.Decisions {
				if d.Desired != d.Current {
					t.Errorf("%s: %d → %d without replica counts", d.Service, d.Current, d.Desired)
				}
			}
		},
	}, {
		name:      "collect fails: signals missing, Apply still runs and nothing scales down",
		collector: fakeCollector{err: errors.New("prometheus down")},
		scaler:    &fakeScaler{targets: two},
		check: func(t *testing.T, tk Tick, sc *fakeScaler) {
			if len(sc.applied) != 1 {
				t.Errorf("Apply called %d times, want 1: targets are known", len(sc.applied))
			}
			if tk.StepErrors[StepCollect] == nil {
				t.Errorf("collect error not reported")
			}
			for _, d := range tk.Plan.Decisions {
				if d.Desired < d.Current {
					t.Errorf("%s scaled down to %d with no signals", d.Service, d.Desired)
				}
			}
		},
	}, {
		name:      "a handed-off target gets the hand-off reason and is not changed",
		collector: fakeCollector{signals: loaded},
		scaler: &fakeScaler{targets: map[string]TargetStatus{
			"worker": {Found: true, Current: 2, Ready: 2, HandedOff: "HorizontalPodAutoscaler/worker"},
			"main":   {Found: true, Current: 2, Ready: 2},
		}},
		check: func(t *testing.T, tk Tick, sc *fakeScaler) {
			d := decision(t, tk, "worker")
			if d.Reason != HandoffReason("HorizontalPodAutoscaler/worker") {
				t.Errorf("reason %q", d.Reason)
			}
			if d.Desired != d.Current {
				t.Errorf("handed-off worker %d → %d", d.Current, d.Desired)
			}
			if tk.HandedOff["worker"] != "HorizontalPodAutoscaler/worker" || len(tk.HandedOff) != 1 {
				t.Errorf("HandedOff = %v", tk.HandedOff)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testCfg(t)
			rec := &countRecorder{}
			l := &Loop{Config: func() *config.Config { return cfg }, Collector: tc.collector, Scaler: tc.scaler, Recorder: rec}
			tk := l.RunOnce(context.Background(), epoch)
			if rec.n != 1 {
				t.Errorf("recorded %d times, want 1", rec.n)
			}
			if len(tk.Plan.Decisions) != len(cfg.Services) {
				t.Errorf("%d decisions for %d services", len(tk.Plan.Decisions), len(cfg.Services))
			}
			tc.check(t, tk, tc.scaler)
		})
	}
}

// Verifies that a recorder that panics neither stops the tick nor keeps the
// recorders after it, or the next tick, from running.
func TestRecorderPanicDoesNotStopTheTick(t *testing.T) {
	cfg := testCfg(t)
	after := &countRecorder{}
	sc := &fakeScaler{targets: map[string]TargetStatus{"worker": {Found: true, Current: 2, Ready: 2}, "main": {Found: true, Current: 2, Ready: 2}}}
	l := &Loop{Config: func() *config.Config { return cfg }, Collector: fakeCollector{signals: Signals{}}, Scaler: sc,
		Recorder: Recorders{panicRecorder{}, after}}
	l.RunOnce(context.Background(), epoch)
	l.RunOnce(context.Background(), epoch.Add(15*time.Second))
	if after.n != 2 || len(sc.applied) != 2 {
		t.Errorf("recorder after the panicking one saw %d ticks, %d applies; want 2 and 2", after.n, len(sc.applied))
	}
	if got := RecordSafely(panicRecorder{}, Tick{}); got != "recorder bug" {
		t.Errorf("RecordSafely returned %v, want the panic value", got)
	}
}

// Verifies that the loop carries the policy state between ticks: a
// stabilization window set in the config holds a scale-down made one tick
// after a scale-up.
func TestStateCarriedBetweenTicks(t *testing.T) {
	cfg, err := config.Parse([]byte(strings.ReplaceAll(testConfig, "scaleDown: {stabilizationWindow: 0s}", "scaleDown: {stabilizationWindow: 5m}")))
	if err != nil {
		t.Fatal(err)
	}
	sc := &fakeScaler{targets: map[string]TargetStatus{"worker": {Found: true, Current: 2, Ready: 2}, "main": {Found: true, Current: 2, Ready: 2}}}
	col := &fakeCollector{signals: Signals{"worker": inflight(60), "main": inflight(20)}}
	l := &Loop{Config: func() *config.Config { return cfg }, Collector: col, Scaler: sc}
	l.RunOnce(context.Background(), epoch)
	sc.targets["worker"] = TargetStatus{Found: true, Current: 6, Ready: 6}
	col.signals = Signals{"worker": inflight(10), "main": inflight(20)}
	tk := l.RunOnce(context.Background(), epoch.Add(15*time.Second))
	if d := decision(t, tk, "worker"); d.Desired != 6 {
		t.Errorf("worker %d → %d inside the 5m scale-down window, want held at 6", d.Current, d.Desired)
	}
	if len(l.State().Services) == 0 {
		t.Error("no policy state kept")
	}
}

// Verifies that the stand-in collector reports every signal missing, so
// the policy holds instead of acting on invented values.
func TestMissingCollector(t *testing.T) {
	cfg := testCfg(t)
	sig, err := MissingCollector{Reason: "none"}.Collect(context.Background(), cfg, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if got := sig["worker"]["inflight"]; got.Status != policy.StatusMissing || got.Error != "none" {
		t.Errorf("observation = %+v, want missing with the reason", got)
	}
}

// meshCollector adds a fixed mesh observation to fakeCollector.
type meshCollector struct {
	fakeCollector
	mesh policy.MeshObservation
}

func (m meshCollector) CollectMesh(context.Context, *config.Config, time.Time) policy.MeshObservation {
	return m.mesh
}

// Verifies that the tick puts the mesh into the snapshot only when the
// configuration names one, and that a collector without a mesh source
// gives a failed observation the decisions can explain, not nil.
func TestMeshInSnapshot(t *testing.T) {
	targets := map[string]TargetStatus{"worker": {Found: true, Current: 1, Ready: 1}, "main": {Found: true, Current: 1, Ready: 1}}
	sigs := Signals{"worker": inflight(5), "main": inflight(5)}
	edge := policy.MeshObservation{Status: policy.StatusOK, Time: epoch, Edges: []policy.MeshEdge{{From: "main", To: "worker", Rate: 3}}}
	withMesh, err := config.Parse([]byte(testConfig + "mesh: {linkerd: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		c    Collector
		want func(*policy.MeshObservation) bool
	}{
		{"no mesh configured", testCfg(t), meshCollector{fakeCollector{signals: sigs}, edge}, func(m *policy.MeshObservation) bool { return m == nil }},
		{"mesh read", withMesh, meshCollector{fakeCollector{signals: sigs}, edge}, func(m *policy.MeshObservation) bool {
			return m != nil && m.Status == policy.StatusOK && len(m.Edges) == 1 && m.Edges[0].To == "worker"
		}},
		{"collector without a mesh source", withMesh, fakeCollector{signals: sigs}, func(m *policy.MeshObservation) bool {
			return m != nil && m.Status == policy.StatusFailed && m.Error == NoMeshSource
		}},
	} {
		l := &Loop{Config: func() *config.Config { return tc.cfg }, Collector: tc.c, Scaler: &fakeScaler{targets: targets}, Recorder: &countRecorder{}}
		tk := l.RunOnce(context.Background(), epoch)
		if !tc.want(tk.Snapshot.Mesh) {
			t.Errorf("%s: snapshot mesh %+v", tc.name, tk.Snapshot.Mesh)
		}
	}
}
