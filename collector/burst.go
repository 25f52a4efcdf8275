package collector

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

var _ loop.BurstCollector = (*Collector)(nil)

// CollectBurst samples, for the burst path, the RabbitMQ queue signals of
// the named services: one management API call for all of their queues,
// through the same breaker as the tick's. The other signals are left out;
// a queue that cannot be read is reported in its observation, as Collect
// does. The error is for a sampling that could not run at all (no RabbitMQ
// configured, no such queue signal).
func (c *Collector) CollectBurst(ctx context.Context, cfg *config.Config, services []string, now time.Time) (loop.Signals, error) {
	if cfg == nil {
		return nil, errors.New("collector: no configuration")
	}
	if c.rabbit == nil {
		return nil, errors.New("collector: the burst path needs the RabbitMQ management API (--rabbitmq)")
	}
	want := cfg.BurstSignals(services)
	var vhosts []string
	for _, w := range want {
		for _, sg := range w.Signals {
			if !slices.Contains(vhosts, sg.Queue.VHost) {
				vhosts = append(vhosts, sg.Queue.VHost)
			}
		}
	}
	if len(want) == 0 {
		return nil, errors.New("collector: no RabbitMQ queue signal to watch")
	}
	slices.Sort(vhosts)
	var stats map[queueRef]queueStats
	err := c.rabbitGuard.run(ctx, func(ctx context.Context) error {
		var err error
		stats, err = c.rabbit.collect(ctx, vhosts)
		return err
	})
	out := make(loop.Signals, len(want))
	for _, w := range want {
		sigs := make(map[string]policy.Observation, len(w.Signals))
		for _, sg := range w.Signals {
			sigs[sg.Name] = c.queue(promView{}, stats, err, sg.Queue, now)
		}
		out[w.Service] = sigs
	}
	return out, nil
}
