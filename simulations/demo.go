package simulations

import (
	"context"
	"fmt"
	"time"

	"github.com/elmascale/elmascale/loop"
)

// RunAccelerated drives a loop against the cluster in accelerated real
// time, for the embedded demo that `elmascale run` starts when no cluster
// is configured: every interval/speedup of wall time the cluster advances
// by interval of virtual time and the loop ticks once at the cluster's
// virtual time. Ticks are handed to onTick (may be nil) after each pass.
// It returns when ctx ends or the scenario's duration has been simulated.
//
// This is the one place in the package that reads the wall clock, and only
// to pace the demo; the simulation itself stays a function of the seed.
// The cluster and loop must not be used by anything else meanwhile.
func (c *Cluster) RunAccelerated(ctx context.Context, lp *loop.Loop, interval time.Duration, speedup float64, onTick func(loop.Tick)) error {
	if interval < time.Second || speedup <= 0 {
		return fmt.Errorf("interval must be >= 1s and speedup > 0")
	}
	period := time.Duration(float64(interval) / speedup)
	if period <= 0 {
		period = time.Millisecond
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for c.Elapsed() < c.sc.Duration {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		c.Advance(interval)
		t := lp.RunOnce(ctx, c.Now())
		if onTick != nil {
			onTick(t)
		}
	}
	return nil
}
