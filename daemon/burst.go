package daemon

import (
	"context"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/elmascale/elmascale/loop"
)

// ticker runs one regular tick: the loop itself, or the burst path's
// wrapper of it.
type ticker interface {
	RunOnce(ctx context.Context, now time.Time) loop.Tick
}

// burstIdleRecheck is how often a config without the burst path is looked
// at again, so a reload that turns it on is picked up.
const burstIdleRecheck = 5 * time.Second

// startBurst starts the burst path beside lp when the collector can sample
// its signals, and returns what runs the regular ticks and a function that
// waits for the burst path to end (it ends with ctx). Without a burst
// collector it returns lp and a no-op.
func startBurst(ctx context.Context, lp *loop.Loop, col loop.Collector, cfgNow func() time.Duration, leading *Leadership, clk clock.Clock, log *zap.Logger) (ticker, func()) {
	bc, ok := col.(loop.BurstCollector)
	if !ok {
		return lp, func() {}
	}
	b := &loop.Burst{Loop: lp, Collector: bc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runBurst(ctx, b, cfgNow, leading, clk, log)
	}()
	return b, func() { <-done }
}

// runBurst checks for bursts every burst interval until ctx ends. A
// sampling that fails is logged when it starts and when it stops failing,
// not every interval.
func runBurst(ctx context.Context, b *loop.Burst, interval func() time.Duration, leading *Leadership, clk clock.Clock, log *zap.Logger) {
	failing := ""
	for {
		iv := interval()
		wait := iv
		if iv <= 0 {
			wait = burstIdleRecheck
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(wait):
		}
		if iv <= 0 {
			continue
		}
		tctx, cancel := leading.TickContext(ctx)
		t, acted := b.Check(tctx, clk.Now())
		cancel()
		switch {
		case t.Err != nil && t.Err.Error() != failing:
			failing = t.Err.Error()
			log.Warn("burst path cannot sample; ticks alone scale until it can", zap.Error(t.Err))
		case t.Err == nil && failing != "":
			failing = ""
			log.Info("burst path sampling again")
		}
		if acted {
			for _, d := range t.Plan.Decisions {
				if len(d.Reason) > 6 && d.Reason[:6] == "burst:" {
					log.Info("burst", zap.String("service", d.Service), zap.Int32("current", d.Current), zap.Int32("desired", d.Desired), zap.String("reason", d.Reason))
				}
			}
		}
	}
}
