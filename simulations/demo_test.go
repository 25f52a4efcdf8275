package simulations

import (
	"context"
	"testing"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
)

// Verifies the embedded-demo API: a shipped scenario's cluster driven by
// the daemon's loop in accelerated time advances, ticks and scales.
func TestRunAccelerated(t *testing.T) {
	sc := loadMini(t)
	cl := NewCluster(sc, 1)
	cfg := sc.Elmascale
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: cl, Scaler: cl, Clock: cl.Now}
	ticks, changed := 0, false
	err := cl.RunAccelerated(context.Background(), lp, 15*time.Second, 15*1000, func(tk loop.Tick) {
		ticks++
		for _, o := range tk.Outcomes {
			if o.Applied {
				changed = true
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := int(sc.Duration / (15 * time.Second)); ticks != want {
		t.Errorf("%d ticks, want %d", ticks, want)
	}
	if !changed {
		t.Error("the loop never scaled anything in the demo scenario")
	}
	if d, _, ok := cl.Replicas("worker"); !ok || d < 1 {
		t.Errorf("worker replicas %d", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewCluster(sc, 1).RunAccelerated(ctx, lp, 15*time.Second, 1, nil); err == nil {
		t.Error("a cancelled context should stop the demo")
	}
}
