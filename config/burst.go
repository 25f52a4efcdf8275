package config

import (
	"slices"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// BurstFile is the burst path's settings: between ticks, the queue signals
// of the services it is on for are read every interval, and a service
// whose queue asks for threshold times its replicas or more is scaled up
// at once. At the top level it sets the defaults of every service; in a
// service it overrides them.
type BurstFile struct {
	// Enabled turns the burst path on (default false). At the top level it
	// turns it on for every service with a RabbitMQ queue signal.
	Enabled *bool `yaml:"enabled" json:"enabled,omitempty"`
	// Interval between two reads of the queues (default 2s), at least
	// 500ms and shorter than the loop's interval.
	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	// Threshold: how many times its current replicas the queue signals
	// must ask for (default 2, Knative's panic threshold of 200%); >= 1.
	Threshold *float64 `yaml:"threshold" json:"threshold,omitempty"`
}

// Burst path defaults.
const (
	DefaultBurstInterval  = 2 * time.Second
	DefaultBurstThreshold = 2.0
	minBurstInterval      = 500 * time.Millisecond
)

// burstDefaults are the top-level burst settings.
type burstDefaults struct {
	enabled   bool
	interval  time.Duration
	threshold float64
}

// compileBurstDefaults reads the top-level burst block.
func compileBurstDefaults(v *validator, f *File, loopInterval time.Duration) burstDefaults {
	d := burstDefaults{interval: DefaultBurstInterval, threshold: DefaultBurstThreshold}
	return d.override(v, "burst", f.Burst, loopInterval)
}

func (d burstDefaults) override(v *validator, p string, b *BurstFile, loopInterval time.Duration) burstDefaults {
	if b == nil {
		return d
	}
	if b.Enabled != nil {
		d.enabled = *b.Enabled
	}
	if b.Interval != 0 {
		d.interval = b.Interval.D()
		v.check(d.interval >= minBurstInterval, p+".interval", "must be >= %s", minBurstInterval)
		v.check(d.interval < loopInterval, p+".interval", "must be shorter than the loop interval %s", loopInterval)
	}
	if b.Threshold != nil {
		d.threshold = *b.Threshold
		v.check(d.threshold >= 1, p+".threshold", "must be >= 1 (a ratio of replicas asked for to replicas running)")
	}
	return d
}

// compileBurst decides the burst path of one service: its policy spec and
// its read interval (0: off). The path watches queue signals read from
// RabbitMQ; a service that turns it on without one is an error, while the
// top-level switch passes such services over.
func compileBurst(v *validator, p string, sf ServiceFile, defs burstDefaults, loopInterval time.Duration, signals []SignalSource) (*policy.BurstSpec, time.Duration) {
	d := defs.override(v, p+".burst", sf.Burst, loopInterval)
	if !d.enabled {
		return nil, 0
	}
	if !hasRabbitQueue(signals) {
		if sf.Burst != nil && sf.Burst.Enabled != nil && *sf.Burst.Enabled {
			v.add(p+".burst.enabled", "the burst path watches queue signals read from RabbitMQ, and this service has none")
		}
		return nil, 0
	}
	return &policy.BurstSpec{Threshold: d.threshold}, d.interval
}

func hasRabbitQueue(signals []SignalSource) bool {
	for _, s := range signals {
		if s.WatchedByBurst() {
			return true
		}
	}
	return false
}

// WatchedByBurst says whether the burst path reads the signal between
// ticks: a queue signal read from the RabbitMQ management API. A queue read
// from Prometheus changes only as often as Prometheus scrapes, so it is
// left to the ticks.
func (s SignalSource) WatchedByBurst() bool {
	return s.Kind == policy.KindQueue && s.Queue != nil && s.Queue.Backlog == "" && len(s.Queue.Queues) > 0
}

// BurstWatch is one service's signals the burst path reads.
type BurstWatch struct {
	Service string
	Signals []SignalSource
}

// BurstSignals lists, in config order, the named services that have
// signals the burst path reads, with those signals.
func (c *Config) BurstSignals(services []string) []BurstWatch {
	var out []BurstWatch
	for _, svc := range c.Services {
		if !slices.Contains(services, svc.Name) {
			continue
		}
		w := BurstWatch{Service: svc.Name}
		for _, sg := range svc.Signals {
			if sg.WatchedByBurst() {
				w.Signals = append(w.Signals, sg)
			}
		}
		if len(w.Signals) > 0 {
			out = append(out, w)
		}
	}
	return out
}
