package simulations

import (
	"context"
	"testing"
	"time"
)

// Verifies that the simulator runs the daemon's burst path between ticks:
// with ticks two minutes apart (at 2m, 4m, 6m), the preset's worker, its
// queue read from RabbitMQ every 2s, scales up between the ticks as the
// scripts grow (main's step at 2m publishes more, the storm starts at 3m),
// while the same configuration without the burst path waits for the tick
// at 4m.
func TestBurstPathActsBetweenTicks(t *testing.T) {
	sc := loadMini(t)
	p, err := BuildPolicy(sc, PolicyPreset, 1)
	if err != nil {
		t.Fatal(err)
	}
	on := *p.Config
	on.Interval = 2 * time.Minute
	off := on
	off.Services = append(off.Services[:0:0], on.Services...)
	watched := false
	for i := range off.Services {
		if off.Services[i].Name == "worker" {
			watched = on.Services[i].BurstInterval > 0
			off.Services[i].BurstInterval = 0
		}
	}
	if !watched {
		t.Fatal("the preset's worker has no burst path")
	}
	firstScaleUp := func(cfg *Policy) time.Duration {
		t.Helper()
		r, err := Run(context.Background(), sc, *cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		s := r.Series.Values["replicas/worker"]
		for k := range s {
			if s[k] > s[0] {
				return time.Duration(k+1) * r.Series.Step
			}
		}
		return sc.Duration
	}
	burst := firstScaleUp(&Policy{Name: "burst", Config: &on})
	tick := firstScaleUp(&Policy{Name: "tick", Config: &off})
	t.Logf("worker first scaled up by %s with the burst path, %s with ticks alone", burst, tick)
	if burst >= 4*time.Minute || tick < 4*time.Minute {
		t.Errorf("worker first scaled up by %s with the burst path and by %s without: want before the tick at 4m with it, not before it without", burst, tick)
	}
}
