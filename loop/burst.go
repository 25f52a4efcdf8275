package loop

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// BurstCollector samples the signals the burst path watches (the queue
// signals read from RabbitMQ) of the named services, as Collector does for
// a tick: problems with a source are reported in the observations.
type BurstCollector interface {
	CollectBurst(ctx context.Context, cfg *config.Config, services []string, now time.Time) (Signals, error)
}

// SkipHeldBetweenTicks is the outcome, in a burst tick, of the decisions
// the tick made and the burst path did not touch.
const SkipHeldBetweenTicks = "decided by the last tick; the burst path only scales up bursting services"

// Burst is the burst path beside a Loop: a second, smaller tick that reads
// only the fastest signals every few seconds and scales up, through
// policy.DecideBurst, the services whose queues jumped. It shares the
// loop's config, scaler, recorder and policy state, so the next tick
// counts a burst's scale-ups against the rate policies. Regular ticks must
// run through Burst.RunOnce, which serializes the two on the state.
type Burst struct {
	Loop      *Loop
	Collector BurstCollector

	mu   sync.Mutex // serializes ticks and burst checks on Loop's state
	last Tick       // the last regular tick
	// dueAt[i] is when the config's service dueNames[i] is next due (zero:
	// not checked yet): by position, since the check runs every second or
	// two and a map by name cost more than the rest of a quiet check.
	// due keeps the times by name across a config whose services differ.
	dueNames []string
	dueAt    []time.Time
	due      map[string]time.Time
	// snap and steps are the maps of the check before, used again: a
	// check every second or two nearly always decides nothing, and a new
	// map of every service for each was most of what it allocated.
	snap  map[string]policy.ServiceObservation
	steps map[string]time.Duration
}

// RunOnce runs one regular tick of the loop. A burst check waits for it.
func (b *Burst) RunOnce(ctx context.Context, now time.Time) Tick {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.Loop.RunOnce(ctx, now)
	b.last = t
	return t
}

// BurstInterval is how often the burst path should run for cfg: the
// shortest BurstInterval of its services, zero when it is off for all.
func BurstInterval(cfg *config.Config) time.Duration {
	var iv time.Duration
	for _, s := range cfg.Services {
		if s.BurstInterval > 0 && (iv == 0 || s.BurstInterval < iv) {
			iv = s.BurstInterval
		}
	}
	return iv
}

// Check runs one burst check at logical time now (one goroutine calls it): it samples the burst
// signals of the services whose interval has come, reads the targets, and
// decides for the services whose queues jumped. Only when it decided
// something does it apply, record a tick and return acted true; a
// sampling or observation that fails changes nothing. The tick of a check
// that did not act shares its Steps and Snapshot maps with the next
// check: read them before calling Check again.
//
// The recorded tick's plan is the last regular tick's with the bursting
// services' decisions in place of theirs, so metrics and the decision API
// keep showing every service; the other decisions' outcome is
// SkipHeldBetweenTicks.
func (b *Burst) Check(ctx context.Context, now time.Time) (t Tick, acted bool) {
	cfg := b.Loop.Config()
	clock := b.Loop.Clock
	if clock == nil {
		clock = time.Now
	}
	names := b.dueServices(cfg, now)
	if b.steps == nil {
		b.steps = make(map[string]time.Duration, 4)
	}
	clear(b.steps)
	t = Tick{Time: now, Steps: b.steps}
	if len(names) == 0 {
		return t, false
	}
	start := clock()
	signals, err := b.Collector.CollectBurst(ctx, cfg, names, now)
	t.Steps[StepCollect] = clock().Sub(start)
	if err != nil {
		t.Err = fmt.Errorf("burst: collect signals: %w", err)
		return t, false
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	start = clock()
	targets, err := b.Loop.Scaler.Observe(ctx, cfg)
	t.Steps[StepObserve] = clock().Sub(start)
	if err != nil {
		t.Err = fmt.Errorf("burst: observe targets: %w", err)
		return t, false
	}
	if b.snap == nil {
		b.snap = make(map[string]policy.ServiceObservation, len(cfg.Services))
	}
	clear(b.snap)
	snap := policy.Snapshot{Time: now, Services: b.snap}
	for _, s := range cfg.Services {
		ts := targets[s.Name]
		// A target someone else scales, or a single-instance one, is the
		// tick's alone.
		snap.Services[s.Name] = policy.ServiceObservation{
			Found:           ts.Found && ts.HandedOff == "" && !ts.Pinned,
			CurrentReplicas: ts.Current,
			ReadyReplicas:   ts.Ready,
			Signals:         signals[s.Name],
		}
	}
	t.Snapshot = snap

	start = clock()
	plan, state := policy.DecideBurst(cfg.Policy, snap, b.Loop.state, now)
	t.Steps[StepDecide] = clock().Sub(start)
	// With nothing bursting the state is the same history, but it carries
	// the burst path's cache on to the next check: dropping it would make
	// every check (every second or two, and nearly always deciding
	// nothing) index the services again.
	b.Loop.state = state
	if len(plan.Decisions) == 0 {
		return t, false
	}
	// This tick is recorded and kept: it gets maps of its own.
	t.Snapshot.Services = maps.Clone(b.snap)
	t.Steps = maps.Clone(b.steps)

	start = clock()
	outcomes := b.Loop.Scaler.Apply(ctx, cfg, plan)
	t.Steps[StepApply] = clock().Sub(start)

	t.Plan, t.Outcomes = b.merge(plan, outcomes)
	t.HandedOff, t.Pinned = b.last.HandedOff, b.last.Pinned
	if b.Loop.Recorder != nil {
		RecordSafely(b.Loop.Recorder, t)
	}
	return t, true
}

// dueServices lists the services whose burst interval has come, and sets
// their next time. A tenth of an interval early counts as due, so timer
// jitter does not skip a round.
func (b *Burst) dueServices(cfg *config.Config, now time.Time) []string {
	b.alignDue(cfg)
	var names []string
	for i, s := range cfg.Services {
		if s.BurstInterval <= 0 {
			continue
		}
		if next := b.dueAt[i]; !next.IsZero() && now.Before(next.Add(-s.BurstInterval/10)) {
			continue
		}
		b.dueAt[i] = now.Add(s.BurstInterval)
		names = append(names, s.Name)
	}
	return names
}

// alignDue makes dueAt follow cfg's services. For the same config the
// names are the same strings, so checking them costs a pointer comparison
// each; for another, the times move over by name.
func (b *Burst) alignDue(cfg *config.Config) {
	if len(b.dueNames) == len(cfg.Services) {
		same := true
		for i := range cfg.Services {
			if cfg.Services[i].Name != b.dueNames[i] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	if b.due == nil {
		b.due = map[string]time.Time{}
	}
	for i, name := range b.dueNames {
		if !b.dueAt[i].IsZero() {
			b.due[name] = b.dueAt[i]
		}
	}
	b.dueNames = make([]string, len(cfg.Services))
	b.dueAt = make([]time.Time, len(cfg.Services))
	for i, s := range cfg.Services {
		b.dueNames[i] = s.Name
		b.dueAt[i] = b.due[s.Name]
	}
}

// merge puts the burst's decisions into the last tick's plan.
func (b *Burst) merge(plan policy.Plan, outcomes []Outcome) (policy.Plan, []Outcome) {
	burst := make(map[string]int, len(plan.Decisions))
	for i, d := range plan.Decisions {
		burst[d.Service] = i
	}
	out := policy.Plan{Time: plan.Time, Decisions: make([]policy.Decision, 0, len(b.last.Plan.Decisions)+len(plan.Decisions))}
	all := append([]Outcome(nil), outcomes...)
	for _, d := range b.last.Plan.Decisions {
		if i, ok := burst[d.Service]; ok {
			d = plan.Decisions[i]
			delete(burst, d.Service)
		} else {
			all = append(all, Outcome{Service: d.Service, Skipped: SkipHeldBetweenTicks})
		}
		out.Decisions = append(out.Decisions, d)
		out.TotalDesired += d.Desired
	}
	for _, d := range plan.Decisions {
		if _, left := burst[d.Service]; left {
			out.Decisions = append(out.Decisions, d)
			out.TotalDesired += d.Desired
		}
	}
	return out, all
}
