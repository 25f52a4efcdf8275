package loop

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// Signals are observations by service name, then signal name.
type Signals map[string]map[string]policy.Observation

// Collector samples every configured signal once. Problems with a source are
// reported inside the observations (StatusFailed, StatusMissing); the error
// is for a collection that could not run at all.
type Collector interface {
	Collect(ctx context.Context, cfg *config.Config, now time.Time) (Signals, error)
}

// MeshCollector is a Collector that also reads the service mesh: the call
// graph and every workload's inbound traffic (config.Config.Mesh says
// where). A failure is reported inside the observation, never as nil.
type MeshCollector interface {
	CollectMesh(ctx context.Context, cfg *config.Config, now time.Time) policy.MeshObservation
}

// NoMeshSource is the error of the mesh observation when the configuration
// asks for a mesh and the collector cannot read one.
const NoMeshSource = "the configuration names a mesh but this collector has no mesh source"

// TargetStatus is what the scaler knows about one service's scale target.
type TargetStatus struct {
	// Found is false when the workload does not exist or could not be read.
	Found   bool
	Current int32
	Ready   int32
	// HandedOff, when not empty, says who else scales the target (an HPA, a
	// KEDA ScaledObject, a pause annotation); elmascale leaves it alone,
	// unless the target is pinned.
	HandedOff string
	// Pinned is true when the target cannot run as more than one instance:
	// its service is pinned by the config, or the workload itself carries
	// the single-instance annotation, whatever the config says. A pinned
	// target is held at one and never handed off.
	Pinned bool
}

// Outcome is what became of one decision.
type Outcome struct {
	Service string
	// Applied is true when replicas were written.
	Applied bool
	// Recommended is true when, in dry-run, the decision was only published.
	Recommended bool
	// Skipped explains a decision that was not acted on (hand-off, not
	// leader, no change).
	Skipped string
	Err     error
}

// Scaler reads scale targets and acts on decisions. In dry-run it only
// records recommendations.
type Scaler interface {
	Observe(ctx context.Context, cfg *config.Config) (map[string]TargetStatus, error)
	Apply(ctx context.Context, cfg *config.Config, plan policy.Plan) []Outcome
}

// Recorder receives every tick's result: metrics, the decisions API, logs.
type Recorder interface {
	Record(t Tick)
}

// Recorders fans each tick out to several recorders, in order.
type Recorders []Recorder

// Record passes the tick to every recorder. A recorder that panics is
// passed over (see RecordSafely), so the others still see the tick.
func (rs Recorders) Record(t Tick) {
	for _, r := range rs {
		RecordSafely(r, t)
	}
}

// RecordSafely gives t to r and turns a panic in r into a return: metrics,
// history and logs are worth less than the next tick, and a recorder bug
// must not take the daemon (and with it every scaling decision) down.
func RecordSafely(r Recorder, t Tick) (recovered any) {
	defer func() { recovered = recover() }()
	r.Record(t)
	return nil
}

// Tick is one pass of the loop.
type Tick struct {
	Time     time.Time
	Snapshot policy.Snapshot
	Plan     policy.Plan
	Outcomes []Outcome
	// HandedOff by service: who else scales it.
	HandedOff map[string]string
	// Pinned holds every single-instance service (by config or by its
	// workload's annotation) with the violation found this tick, or "" for
	// none: another owner claiming the target (the hand-off is refused)
	// or more than one replica running. Either way the decision brings the
	// target back to one.
	Pinned map[string]string
	// Steps are the durations of collect, observe, decide and apply.
	Steps map[string]time.Duration
	// Err is the first step error; StepErrors has each failed step's error
	// by step name (observe, collect).
	Err        error
	StepErrors map[string]error
}

// Loop step names, as used in Tick.Steps and Tick.StepErrors.
const (
	StepObserve = "observe"
	StepCollect = "collect"
	StepDecide  = "decide"
	StepApply   = "apply"
)

// HandoffOwner is the kind of owner in a TargetStatus.HandedOff value
// ("HorizontalPodAutoscaler/name" gives "HorizontalPodAutoscaler"), a
// bounded value fit for a metric label.
func HandoffOwner(handedOff string) string {
	owner, _, _ := strings.Cut(handedOff, "/")
	return owner
}

// HandoffReason is the one sentence every output gives for a target that
// another owner scales: the decision's reason, the skipped outcome, the log.
// who is a TargetStatus.HandedOff value.
func HandoffReason(who string) string {
	if !strings.Contains(who, "/") {
		return "handed off: " + who + " (elmascale leaves this target alone)"
	}
	return "handed off: " + who + " scales this target"
}

// PinnedHandoffRefused is the sentence for a pinned target another owner
// claims. who is a TargetStatus.HandedOff value.
func PinnedHandoffRefused(who string) string {
	return "hand-off to " + who + " refused: a single-instance target is held at one"
}

// pinnedViolation says what, if anything, would let a pinned target run
// more than one instance: another owner, or replicas already above one.
func pinnedViolation(ts TargetStatus) string {
	switch {
	case !ts.Found:
		return ""
	case ts.HandedOff != "":
		return PinnedHandoffRefused(ts.HandedOff)
	case ts.Current > 1:
		return fmt.Sprintf("single-instance target found at %d replicas", ts.Current)
	}
	return ""
}

// pinService returns spec with service i pinned at one instance, copying
// the service list the first time so the config's own spec is never
// changed (cur is spec as received; spec may already be a copy).
func pinService(spec, cur policy.Spec, i int) policy.Spec {
	if len(spec.Services) > 0 && len(cur.Services) > 0 && &spec.Services[0] == &cur.Services[0] {
		spec.Services = slices.Clone(cur.Services)
	}
	s := &spec.Services[i]
	s.Pinned, s.MinReplicas, s.MaxReplicas = true, 1, 1
	s.FallbackReplicas = min(s.FallbackReplicas, 1)
	return spec
}

// Loop is the control loop shared by the in-cluster daemon and the simulator:
// observe targets, collect signals, decide, apply, record.
type Loop struct {
	Config    func() *config.Config
	Collector Collector
	Scaler    Scaler
	Recorder  Recorder
	// Clock measures step durations; nil means wall time.
	Clock func() time.Time

	state policy.State
}

// State returns the policy history carried between ticks.
func (l *Loop) State() policy.State { return l.state }

// RunOnce runs one tick at logical time now. One config snapshot is used for
// the whole tick, so a reload never mixes two configs in one decision.
func (l *Loop) RunOnce(ctx context.Context, now time.Time) Tick {
	cfg := l.Config()
	clock := l.Clock
	if clock == nil {
		clock = time.Now
	}
	t := Tick{Time: now, Steps: make(map[string]time.Duration, 4)}
	fail := func(step string, err error) {
		if t.StepErrors == nil {
			t.StepErrors = map[string]error{}
		}
		t.StepErrors[step] = err
		if t.Err == nil {
			t.Err = err
		}
	}
	step := func(name string, start time.Time) { t.Steps[name] = clock().Sub(start) }

	start := clock()
	targets, err := l.Scaler.Observe(ctx, cfg)
	step(StepObserve, start)
	if err != nil {
		// Without replica counts nothing can be decided safely: hold all.
		fail(StepObserve, fmt.Errorf("observe targets: %w", err))
		targets = nil
	}

	start = clock()
	signals, err := l.Collector.Collect(ctx, cfg, now)
	mesh := collectMesh(ctx, l.Collector, cfg, now)
	step(StepCollect, start)
	if err != nil {
		fail(StepCollect, fmt.Errorf("collect signals: %w", err))
	}

	spec := cfg.Policy
	snap := policy.Snapshot{Time: now, Services: make(map[string]policy.ServiceObservation, len(cfg.Services)), Mesh: mesh}
	for i, s := range cfg.Services {
		ts := targets[s.Name]
		if ts.Pinned && !spec.Services[i].Pinned {
			spec = pinService(spec, cfg.Policy, i)
		}
		pinned := spec.Services[i].Pinned
		// A pinned target is never handed off: another autoscaler or a pause
		// must not let it run more than one instance, so the policy sees it
		// as found and brings it back to one.
		handedOff := ts.HandedOff != "" && !pinned
		obs := policy.ServiceObservation{
			Found:           ts.Found && !handedOff,
			CurrentReplicas: ts.Current,
			ReadyReplicas:   ts.Ready,
			Signals:         signals[s.Name],
		}
		if handedOff {
			if t.HandedOff == nil {
				t.HandedOff = map[string]string{}
			}
			t.HandedOff[s.Name] = ts.HandedOff
		}
		if pinned {
			if t.Pinned == nil {
				t.Pinned = map[string]string{}
			}
			t.Pinned[s.Name] = pinnedViolation(ts)
		}
		snap.Services[s.Name] = obs
	}
	t.Snapshot = snap

	start = clock()
	plan, state := policy.Decide(spec, snap, l.state, now)
	l.state = state
	for i := range plan.Decisions {
		d := &plan.Decisions[i]
		if who, ok := t.HandedOff[d.Service]; ok {
			d.Reason = HandoffReason(who)
		}
		if v := t.Pinned[d.Service]; v != "" {
			d.Reason += "; " + v
		}
	}
	t.Plan = plan
	step(StepDecide, start)

	start = clock()
	if t.Err == nil || targets != nil {
		t.Outcomes = l.Scaler.Apply(ctx, cfg, plan)
	}
	step(StepApply, start)

	if l.Recorder != nil {
		RecordSafely(l.Recorder, t)
	}
	return t
}

// collectMesh reads the mesh when the configuration names one: nil when it
// does not, a failed observation when the collector cannot.
func collectMesh(ctx context.Context, c Collector, cfg *config.Config, now time.Time) *policy.MeshObservation {
	if cfg.Mesh == nil {
		return nil
	}
	mc, ok := c.(MeshCollector)
	if !ok {
		return &policy.MeshObservation{Status: policy.StatusFailed, Error: NoMeshSource}
	}
	o := mc.CollectMesh(ctx, cfg, now)
	return &o
}
