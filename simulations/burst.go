package simulations

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
)

var _ loop.BurstCollector = (*Cluster)(nil)

// CollectBurst implements loop.BurstCollector as the live collector does:
// of the named services, only the queue signals read from the RabbitMQ
// management API, answered from the simulated broker's statistics as they
// stood at their last refresh.
func (c *Cluster) CollectBurst(_ context.Context, cfg *config.Config, services []string, now time.Time) (loop.Signals, error) {
	// A config is not changed once loaded (a reload brings a new one), so
	// the same config and names give the same signals.
	if cfg != c.burstCfg || !slices.Equal(services, c.burstNames) {
		c.burstCfg, c.burstNames, c.burstWant = cfg, slices.Clone(services), cfg.BurstSignals(services)
	}
	want := c.burstWant
	if len(want) == 0 {
		return nil, errors.New("simulations: no RabbitMQ queue signal to watch")
	}
	out := reuse(c.recycle, &c.burstOut, len(want))
	for _, w := range want {
		obs := c.serviceMap(out, 1, w.Service, len(w.Signals))
		for _, src := range w.Signals {
			obs[src.Name] = c.observeQueue(src.Queue, now)
		}
	}
	return out, nil
}
