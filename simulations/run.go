package simulations

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Result is one run of a scenario under a policy.
type Result struct {
	Scenario string `json:"scenario"`
	Policy   string `json:"policy"`
	Seed     uint64 `json:"seed"`
	Scores   Scores `json:"scores"`
	// Unrelieved lists bottlenecks the policy found but could not relieve
	// by scaling (a pinned single-instance service), with how long and why.
	Unrelieved []Unrelieved `json:"unrelieved,omitempty"`
	// Events is the number of discrete events simulated.
	Events uint64 `json:"-"`
	Series Series `json:"-"`
}

// Unrelieved is a bottleneck that scaling could not relieve.
type Unrelieved struct {
	Service string  `json:"service"`
	Seconds float64 `json:"seconds"`
	// Explains are the services whose latency it was blamed for.
	Explains []string `json:"explains,omitempty"`
	Reason   string   `json:"reason"`
}

// bottleneckRecorder notes, tick by tick, the decisions that name a
// bottleneck the policy is not allowed to scale.
type bottleneckRecorder struct {
	interval float64
	seen     map[string]*Unrelieved
	// betweenTicks is set while the burst path runs: its ticks repeat the
	// last tick's other decisions, which were counted when it was made.
	betweenTicks bool
}

func (b *bottleneckRecorder) Record(t loop.Tick) {
	if b.betweenTicks {
		return
	}
	for _, d := range t.Plan.Decisions {
		if !d.Bottleneck || d.LimitedBy != policy.LimitPinned || d.Proposal <= 1 {
			continue
		}
		u := b.seen[d.Service]
		if u == nil {
			u = &Unrelieved{Service: d.Service}
			b.seen[d.Service] = u
		}
		u.Seconds += b.interval
		u.Reason = d.Reason
		for _, e := range d.Explains {
			if !slices.Contains(u.Explains, e) {
				u.Explains = append(u.Explains, e)
			}
		}
	}
}

// Run simulates the scenario under a policy for a seed. A configuration
// policy is driven by the very loop.Loop the daemon runs, ticking at its
// configured interval in virtual time, with the daemon's burst path
// (loop.Burst) checking between ticks at its interval when the
// configuration turns it on; the oracle sets its schedule.
func Run(ctx context.Context, sc *Scenario, p Policy, seed uint64) (*Result, error) {
	return run(ctx, sc, p, seed, true)
}

// run is Run, recycling the cluster's observation maps or not: the loop
// below and its recorder keep none of them past the next tick or check.
func run(ctx context.Context, sc *Scenario, p Policy, seed uint64, recycle bool) (*Result, error) {
	cl := NewCluster(sc, seed)
	cl.recycle = recycle
	sr := newScorer(sc)
	cl.sim.onWindow = sr.onWindow
	res := &Result{Scenario: sc.Name, Policy: p.Name, Seed: seed}
	end := sc.Duration.Seconds()

	switch {
	case p.Oracle != nil:
		step := p.Oracle.Step
		for t := time.Duration(0); t < sc.Duration; t += step {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			cl.sim.advanceTo(t.Seconds())
			for i := range sc.Services {
				if n, ok := p.Oracle.at(sc.Services[i].Name, t); ok && n != cl.sim.svcs[i].desired {
					cl.sim.setReplicas(int32(i), n)
					cl.sim.countAction(int32(i))
				}
			}
		}
	case p.Config != nil:
		cfg := p.Config
		rec := &bottleneckRecorder{interval: cfg.Interval.Seconds(), seen: map[string]*Unrelieved{}}
		lp := &loop.Loop{
			Config:    func() *config.Config { return cfg },
			Collector: cl, Scaler: cl, Recorder: rec,
			// Step timings are meaningless in virtual time; the clock is
			// the virtual one so that nothing reads the wall clock.
			Clock: cl.Now,
		}
		burst, every := &loop.Burst{Loop: lp, Collector: cl}, loop.BurstInterval(cfg)
		next := every // the burst path's next check, as the daemon's timer runs from the start
		for t := cfg.Interval; t <= sc.Duration; t += cfg.Interval {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for ; every > 0 && next < t; next += every {
				cl.sim.advanceTo(next.Seconds())
				rec.betweenTicks = true
				burst.Check(ctx, cl.at(next.Seconds()))
				rec.betweenTicks = false
			}
			cl.sim.advanceTo(t.Seconds())
			burst.RunOnce(ctx, cl.at(t.Seconds()))
		}
		for _, name := range slices.Sorted(maps.Keys(rec.seen)) {
			u := rec.seen[name]
			sort.Strings(u.Explains)
			res.Unrelieved = append(res.Unrelieved, *u)
		}
	default:
		return nil, fmt.Errorf("policy %q has neither a config nor an oracle", p.Name)
	}
	cl.sim.advanceTo(end)
	res.Scores = sr.scores(cl.sim)
	res.Series = sr.finalSeries()
	res.Events = cl.sim.events
	return res, nil
}
