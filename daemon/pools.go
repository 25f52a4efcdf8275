package daemon

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/elmascale/elmascale/config"
)

// QueueLister names the queues of RabbitMQ vhosts; the collector is one.
type QueueLister interface {
	ListQueues(ctx context.Context, vhosts []string) (config.QueueNames, error)
}

// PoolSource is the config in force with its worker pool templates
// expanded over the queues RabbitMQ has: a new pool's queue adds a service
// at the next refresh; a queue that is gone keeps its service for the
// template's grace period (its queue signal reads missing, so it is held,
// never scaled down for it) before the service is dropped from management.
// A listing that fails changes nothing: no pool is dropped because the
// broker could not be read. A config without templates passes through.
type PoolSource struct {
	inner configSource
	list  QueueLister
	clock clock.Clock
	log   *zap.Logger

	cur atomic.Pointer[config.Config]

	// refresh serializes refreshes and guards what they keep; mu guards
	// only changed, so a slow listing never delays a reader of Changed.
	refresh sync.Mutex
	base    *config.Config                  // the inner config cur was expanded from
	seen    map[string]map[string]time.Time // vhost → queue → last listed
	refused string                          // the refusals last logged
	listErr string                          // the listing failure last logged
	gauge   *prometheus.GaugeVec            // elmascale_pool_queues, or nil
	gauged  map[[2]string]bool              // its label sets last set

	mu      sync.Mutex
	changed chan struct{}
}

var _ configSource = (*PoolSource)(nil)

// NewPoolSource wraps inner; list may be nil (no RabbitMQ configured), in
// which case templates expand to no pool and say so in the log.
func NewPoolSource(inner configSource, list QueueLister, clk clock.Clock, log *zap.Logger) *PoolSource {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &PoolSource{inner: inner, list: list, clock: clk, log: log, seen: map[string]map[string]time.Time{}}
	s.cur.Store(inner.Current())
	return s
}

// PoolQueuesMetric is the gauge of the pool source: per template (the
// service it is written under) the pool queues it manages and refuses.
const PoolQueuesMetric = "elmascale_pool_queues"

// Register adds elmascale_pool_queues to r: per template the number of
// pool queues in state "managed" and "refused", set at every refresh, so a
// pool the template cannot manage (an id that is no DNS label, a service
// name taken, over maxPools) shows on the dashboard and can alert, not
// only in the log. Call it before the first Refresh.
func (s *PoolSource) Register(r prometheus.Registerer) error {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: PoolQueuesMetric,
		Help: "Worker pool queues a service template manages (state=managed) or found but refused (state=refused; the log says why), at the last refresh."},
		[]string{"template", "state"})
	if err := r.Register(g); err != nil {
		return err
	}
	s.refresh.Lock()
	s.gauge, s.gauged = g, map[[2]string]bool{}
	s.refresh.Unlock()
	return nil
}

// setGauge sets elmascale_pool_queues from the expansion in force and
// deletes the label sets of templates no longer configured.
func (s *PoolSource) setGauge(c *config.Config) {
	if s.gauge == nil {
		return
	}
	counts := map[[2]string]float64{}
	if c.Pools != nil {
		for _, t := range c.Pools.Templates {
			counts[[2]string{t.Service, "managed"}] = 0
			counts[[2]string{t.Service, "refused"}] = 0
		}
		for _, p := range c.Pools.Services {
			counts[[2]string{p.Template, "managed"}]++
		}
		for _, r := range c.Pools.Refused {
			counts[[2]string{r.Template, "refused"}]++
		}
	}
	for k := range s.gauged {
		if _, ok := counts[k]; !ok {
			s.gauge.DeleteLabelValues(k[:]...)
		}
	}
	s.gauged = make(map[[2]string]bool, len(counts))
	for k, v := range counts {
		s.gauge.WithLabelValues(k[:]...).Set(v)
		s.gauged[k] = true
	}
}

// Current returns the expanded config in force; never nil. A config
// without templates is the inner one as soon as it is in force.
func (s *PoolSource) Current() *config.Config {
	if base := s.inner.Current(); base.Pools == nil {
		return base
	}
	return s.cur.Load()
}

// Changed is closed when a new expanded config takes force.
func (s *PoolSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// Refresh lists the queues (when the config has templates) and expands the
// config in force over them. It reports whether the expansion changed.
func (s *PoolSource) Refresh(ctx context.Context) bool {
	base := s.inner.Current()
	s.refresh.Lock()
	defer s.refresh.Unlock()
	if base.Pools == nil {
		s.setGauge(base)
		return s.publish(base, base)
	}
	now := s.clock.Now()
	templates := base.Pools.Templates
	vhosts := make([]string, 0, len(templates))
	for _, t := range templates {
		if !slices.Contains(vhosts, t.VHost) {
			vhosts = append(vhosts, t.VHost)
		}
	}
	slices.Sort(vhosts)
	switch {
	case s.list == nil:
		s.logListError("service templates need RabbitMQ's management API (--rabbitmq) to find their pools; they manage no pool", nil)
	default:
		listed, err := s.list.ListQueues(ctx, vhosts)
		if err != nil {
			// Keep what was known: the pools stay, their signals read the
			// same failure and hold.
			s.logListError("cannot list RabbitMQ queues for the service templates; keeping the pools known", err)
			break
		}
		if s.listErr != "" {
			s.log.Info("RabbitMQ queues listed again for the service templates")
			s.listErr = ""
		}
		s.remember(templates, listed, now)
	}
	known := config.QueueNames{}
	for vh, qs := range s.seen {
		known[vh] = slices.Sorted(maps.Keys(qs))
	}
	next, err := base.Expand(known)
	if err != nil {
		// Only a pool can make the expansion fail where the template
		// compiled; keep the previous expansion of the same config.
		s.log.Error("service templates do not expand over the queues found; keeping the services in force", zap.Error(err))
		if s.base == base {
			return false
		}
		next = base
	}
	s.logRefused(next)
	s.setGauge(next)
	return s.publish(base, next)
}

// remember records the listed queues that fit a template and forgets the
// ones unlisted for longer than their template's grace period.
func (s *PoolSource) remember(templates []config.PoolTemplate, listed config.QueueNames, now time.Time) {
	grace := func(vhost, q string) (time.Duration, bool) {
		var g time.Duration
		fits := false
		for _, t := range templates {
			if _, ok := t.PoolID(q); ok && t.VHost == vhost {
				fits, g = true, max(g, t.GracePeriod)
			}
		}
		return g, fits
	}
	for vh, qs := range listed {
		for _, q := range qs {
			if _, fits := grace(vh, q); !fits {
				continue
			}
			if s.seen[vh] == nil {
				s.seen[vh] = map[string]time.Time{}
			}
			if _, had := s.seen[vh][q]; !had {
				s.log.Info("worker pool queue found", zap.String("vhost", vh), zap.String("queue", q))
			}
			s.seen[vh][q] = now
		}
	}
	for vh, qs := range s.seen {
		for q, last := range qs {
			g, fits := grace(vh, q)
			switch {
			case !fits:
				delete(qs, q)
			case now.Sub(last) >= g:
				s.log.Info("worker pool queue gone for its grace period; its service is no longer managed", zap.String("vhost", vh), zap.String("queue", q), zap.Duration("gracePeriod", g))
				delete(qs, q)
			case last.Before(now):
				s.log.Debug("worker pool queue not listed; its service is held until the grace period ends", zap.String("vhost", vh), zap.String("queue", q), zap.Time("lastSeen", last))
			}
		}
		if len(qs) == 0 {
			delete(s.seen, vh)
		}
	}
}

// logListError logs a listing failure once until it changes or ends.
func (s *PoolSource) logListError(msg string, err error) {
	key := msg
	if err != nil {
		key += err.Error()
	}
	if key == s.listErr {
		return
	}
	s.listErr = key
	s.log.Warn(msg, zap.Error(err))
}

func (s *PoolSource) logRefused(c *config.Config) {
	if c.Pools == nil {
		return
	}
	var b strings.Builder
	for _, r := range c.Pools.Refused {
		b.WriteString(r.Queue + ": " + r.Reason + "\n")
	}
	if b.String() == s.refused {
		return
	}
	s.refused = b.String()
	for _, r := range c.Pools.Refused {
		s.log.Warn("worker pool queue not managed", zap.String("template", r.Template), zap.String("queue", r.Queue), zap.String("reason", r.Reason))
	}
}

// publish takes next in force when it differs from the config in force.
func (s *PoolSource) publish(base, next *config.Config) bool {
	prev := s.cur.Load()
	if s.base == base && samePools(prev, next) {
		return false
	}
	s.base = base
	s.cur.Store(next)
	if next.Pools != nil {
		names := make([]string, len(next.Pools.Services))
		for i, p := range next.Pools.Services {
			names[i] = p.Service
		}
		s.log.Info("worker pools expanded", zap.Int("services", len(next.Services)), zap.Strings("pools", names))
	}
	s.mu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
	return true
}

func samePools(a, b *config.Config) bool {
	if a == b {
		return true
	}
	if a.Pools == nil || b.Pools == nil {
		return false
	}
	return slices.Equal(a.Pools.Services, b.Pools.Services)
}

// Run refreshes at every change of the inner config and every interval of
// the config in force until ctx ends.
func (s *PoolSource) Run(ctx context.Context) {
	for ctx.Err() == nil {
		changed := s.inner.Changed()
		s.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-s.clock.After(s.inner.Current().Interval):
		}
	}
}
