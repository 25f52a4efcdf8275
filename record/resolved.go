package record

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// SignalResolved exports elmascale_signal_resolved: per service and signal,
// whether the last tick could use the signal, so the dashboard shows what
// elmascale is blind to (a latency query without a series for the service,
// a queue that is not there, pods metrics-server does not measure).
type SignalResolved struct {
	gauge *prometheus.GaugeVec
	seen  map[[2]string]bool
}

var _ loop.Recorder = (*SignalResolved)(nil)

// NewSignalResolved creates the gauge and registers it with r when r is
// not nil.
func NewSignalResolved(r prometheus.Registerer) *SignalResolved {
	s := &SignalResolved{
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_signal_resolved",
			Help: "1 when the signal's observation at the last tick was usable (ok), 0 when it was missing, stale, failed or invalid; `elmascale doctor` says why and how to fix it."},
			[]string{"service", "signal"}),
		seen: map[[2]string]bool{},
	}
	if r != nil {
		r.MustRegister(s.gauge)
	}
	return s
}

// Record sets the gauge from the tick's decisions and drops the series of
// services that left the config. A signal missing from a decision whose
// service is still there keeps its series: a burst tick decides on queue
// signals alone and must not blank the rest. It is called from the loop
// goroutine only.
func (s *SignalResolved) Record(t loop.Tick) {
	present := make(map[string]bool, len(t.Plan.Decisions))
	for _, d := range t.Plan.Decisions {
		present[d.Service] = true
		for _, r := range d.Signals {
			k := [2]string{d.Service, r.Name}
			s.seen[k] = true
			v := 0.0
			if r.Status == policy.StatusOK {
				v = 1
			}
			s.gauge.WithLabelValues(k[:]...).Set(v)
		}
	}
	for k := range s.seen {
		if !present[k[0]] {
			s.gauge.DeleteLabelValues(k[:]...)
			delete(s.seen, k)
		}
	}
}
