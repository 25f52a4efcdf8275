package simulations

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

var _ loop.BurstCollector = (*Cluster)(nil)

// CollectBurst implements loop.BurstCollector as the live collector does:
// of the named services, only the queue signals read from the RabbitMQ
// management API, answered from the simulated broker's statistics as they
// stood at their last refresh.
func (c *Cluster) CollectBurst(_ context.Context, cfg *config.Config, services []string, now time.Time) (loop.Signals, error) {
	out := loop.Signals{}
	for _, s := range cfg.Services {
		if !slices.Contains(services, s.Name) {
			continue
		}
		var obs map[string]policy.Observation
		for _, src := range s.Signals {
			if src.Kind != policy.KindQueue || src.Queue == nil || src.Queue.Backlog != "" || len(src.Queue.Queues) == 0 {
				continue
			}
			if obs == nil {
				obs = map[string]policy.Observation{}
			}
			obs[src.Name] = c.observeQueue(src.Queue, now)
		}
		if obs != nil {
			out[s.Name] = obs
		}
	}
	if len(out) == 0 {
		return nil, errors.New("simulations: no RabbitMQ queue signal to watch")
	}
	return out, nil
}
