package record

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Label values with a fixed set of values.
const (
	directionUp   = "up"
	directionDown = "down"
	limitNone     = "none"

	// ReloadSuccess, ReloadFailure and ReloadRejected are the result label
	// values of elmascale_config_reloads_total.
	ReloadSuccess  = "success"
	ReloadFailure  = "failure"
	ReloadRejected = "rejected"
)

// Metrics are the daemon's Prometheus metrics. Names are a contract with
// the Grafana dashboard (see record/METRICS.md). Every per-service label
// set comes from the config, so cardinality is bounded by it; label sets of
// services that leave the config are deleted.
type Metrics struct {
	current, desired, recommended, ready *prometheus.GaugeVec
	signalValue, signalTarget            *prometheus.GaugeVec
	bottleneck                           *prometheus.GaugeVec
	scaleActions                         *prometheus.CounterVec
	handoffs                             *prometheus.GaugeVec
	pinnedViolation                      *prometheus.GaugeVec
	loopDuration                         *prometheus.HistogramVec
	ticks                                prometheus.Counter
	loopErrors                           *prometheus.CounterVec
	dryRun, leader                       prometheus.Gauge
	reloads                              *prometheus.CounterVec
	buildInfo                            *prometheus.GaugeVec
	minReplicas, maxReplicas             *prometheus.GaugeVec
	budgetMax                            prometheus.Gauge
	configInfo                           *prometheus.GaugeVec
	decision                             *prometheus.GaugeVec
	graph                                *graphMetrics

	dry      bool
	services map[string]bool
	signals  map[[3]string]bool
	handoff  map[[2]string]bool
	pinned   map[string]bool
	// decisions holds each service's decision_info labels; bounds the
	// services whose min and max are set; namespace the config_info label.
	decisions map[string][4]string
	bounds    map[string]bool
	namespace string
}

// NewMetrics creates the metrics and registers them with r when r is not nil.
func NewMetrics(r prometheus.Registerer, dryRun bool, version string) *Metrics {
	svc := []string{"service"}
	sig := []string{"service", "signal", "kind"}
	m := &Metrics{
		current: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_replicas_current",
			Help: "spec.replicas of the service's scale target as last observed."}, svc),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_replicas_desired",
			Help: "Replicas the policy decided for the service at the last tick."}, svc),
		recommended: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_replicas_recommended",
			Help: "Replicas recommended for the service in dry-run mode (never written)."}, svc),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_replicas_ready",
			Help: "Ready replicas of the service's scale target as last observed."}, svc),
		signalValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_signal_value",
			Help: "Last usable value of a signal, in the signal's unit: percent (utilization), seconds (latency), messages per second (queue: the throughput needed to keep up and drain the backlog), the metric's unit otherwise."}, sig),
		signalTarget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_signal_target",
			Help: "Target of a signal, in the same unit as elmascale_signal_value (queue: the throughput the current replicas give at the target utilization)."}, sig),
		bottleneck: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_bottleneck",
			Help: "1 when the service is a bottleneck at the last tick, else 0."}, svc),
		scaleActions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elmascale_scale_actions_total",
			Help: "Replica changes written. direction: up, down. limited_by: none, hold, fallback, stabilization, rate, min, max, pinned, budget."},
			[]string{"service", "direction", "limited_by"}),
		handoffs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_handoffs",
			Help: "1 while another owner scales the service's target. owner: HorizontalPodAutoscaler, ScaledObject, paused."},
			[]string{"service", "owner"}),
		pinnedViolation: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_pinned_violation",
			Help: "Per single-instance service: 1 when at the last tick its target ran more than one replica or another owner (HorizontalPodAutoscaler, ScaledObject, pause) claimed it; elmascale refuses the hand-off and brings it back to one. 0 otherwise."}, svc),
		loopDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "elmascale_loop_duration_seconds",
			Help:    "Duration of each loop step. step: observe, collect, decide, apply, total.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"step"}),
		ticks: prometheus.NewCounter(prometheus.CounterOpts{Name: "elmascale_loop_ticks_total",
			Help: "Loop ticks completed."}),
		loopErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elmascale_loop_errors_total",
			Help: "Loop step failures. step: observe, collect, apply."}, []string{"step"}),
		dryRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "elmascale_dry_run",
			Help: "1 in dry-run mode (decisions are only recommended), 0 in apply mode."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "elmascale_leader",
			Help: "1 while this process holds the leader lease (or leader election is off)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elmascale_config_reloads_total",
			Help: "Config file reloads. result: success, failure (invalid file, old config kept), rejected (valid but changes what needs a restart)."}, []string{"result"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_build_info",
			Help: "Always 1; the version label says which build runs."}, []string{"version"}),
		minReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_replicas_min",
			Help: "The service's minReplicas in the config in force (1 for a pinned service)."}, svc),
		maxReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_replicas_max",
			Help: "The service's maxReplicas in the config in force (1 for a pinned service)."}, svc),
		budgetMax: prometheus.NewGauge(prometheus.GaugeOpts{Name: "elmascale_budget_max_total_replicas",
			Help: "budget.maxTotalReplicas of the config in force; 0 means no cap."}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_config_info",
			Help: "Always 1; target_namespace is the namespace whose targets the config in force manages."}, []string{"target_namespace"}),
		decision: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_decision_info",
			Help: "Always 1, one series per service: the last decision. direction: up, down, none. limited_by: none, hold, fallback, stabilization, rate, min, max, pinned, budget. scaling_limited: the HPA condition reason (DesiredWithinRange, ScaleUpLimit, ScaleDownLimit, TooManyReplicas, TooFewReplicas) or none."},
			[]string{"service", "direction", "limited_by", "scaling_limited"}),
		graph:     newGraphMetrics(),
		decisions: map[string][4]string{},
		bounds:    map[string]bool{},
		dry:       dryRun,
		services:  map[string]bool{},
		signals:   map[[3]string]bool{},
		handoff:   map[[2]string]bool{},
		pinned:    map[string]bool{},
	}
	if r != nil {
		r.MustRegister(m.current, m.desired, m.recommended, m.ready, m.signalValue, m.signalTarget, m.bottleneck,
			m.scaleActions, m.handoffs, m.pinnedViolation, m.loopDuration, m.ticks, m.loopErrors, m.dryRun, m.leader, m.reloads, m.buildInfo,
			m.minReplicas, m.maxReplicas, m.budgetMax, m.configInfo, m.decision)
		r.MustRegister(m.graph.collectors()...)
	}
	if dryRun {
		m.dryRun.Set(1)
	}
	m.buildInfo.WithLabelValues(version).Set(1)
	for _, res := range []string{ReloadSuccess, ReloadFailure, ReloadRejected} {
		m.reloads.WithLabelValues(res)
	}
	for _, s := range []string{loop.StepObserve, loop.StepCollect, loop.StepApply} {
		m.loopErrors.WithLabelValues(s)
	}
	return m
}

// SetLeader records leadership.
func (m *Metrics) SetLeader(leading bool) {
	if leading {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// SetConfig records the config in force: each service's bounds, the
// budget, and the namespace it manages. Call it whenever the config may
// have changed; it is cheap and idempotent.
func (m *Metrics) SetConfig(namespace string, spec policy.Spec) {
	if namespace != m.namespace {
		if m.namespace != "" {
			m.configInfo.DeleteLabelValues(m.namespace)
		}
		m.namespace = namespace
	}
	m.configInfo.WithLabelValues(namespace).Set(1)
	m.budgetMax.Set(float64(spec.Budget.MaxTotalReplicas))
	seen := make(map[string]bool, len(spec.Services))
	for _, s := range spec.Services {
		seen[s.Name] = true
		m.minReplicas.WithLabelValues(s.Name).Set(float64(s.MinReplicas))
		m.maxReplicas.WithLabelValues(s.Name).Set(float64(s.MaxReplicas))
	}
	for s := range m.bounds {
		if !seen[s] {
			m.minReplicas.DeleteLabelValues(s)
			m.maxReplicas.DeleteLabelValues(s)
		}
	}
	m.bounds = seen
}

// Reload counts a config reload by result.
func (m *Metrics) Reload(result string) { m.reloads.WithLabelValues(result).Inc() }

// Record updates the metrics from one tick. It is called from the loop
// goroutine only.
func (m *Metrics) Record(t loop.Tick) {
	m.ticks.Inc()
	var total float64
	for step, d := range t.Steps {
		m.loopDuration.WithLabelValues(step).Observe(d.Seconds())
		total += d.Seconds()
	}
	m.loopDuration.WithLabelValues("total").Observe(total)
	for step := range t.StepErrors {
		m.loopErrors.WithLabelValues(step).Inc()
	}
	applyFailed := false
	byService := make(map[string]policy.Decision, len(t.Plan.Decisions))
	for _, d := range t.Plan.Decisions {
		byService[d.Service] = d
	}
	for _, o := range t.Outcomes {
		if o.Err != nil {
			applyFailed = true
		}
		if !o.Applied {
			continue
		}
		d := byService[o.Service]
		dir := directionUp
		if d.Desired < d.Current {
			dir = directionDown
		}
		lim := string(d.LimitedBy)
		if lim == "" {
			lim = limitNone
		}
		m.scaleActions.WithLabelValues(o.Service, dir, lim).Inc()
	}
	if applyFailed {
		m.loopErrors.WithLabelValues(loop.StepApply).Inc()
	}

	seen := make(map[string]bool, len(t.Plan.Decisions))
	seenSig := make(map[[3]string]bool, len(m.signals))
	for _, d := range t.Plan.Decisions {
		s := d.Service
		seen[s] = true
		m.current.WithLabelValues(s).Set(float64(d.Current))
		m.ready.WithLabelValues(s).Set(float64(d.Ready))
		m.desired.WithLabelValues(s).Set(float64(d.Desired))
		if m.dry {
			m.recommended.WithLabelValues(s).Set(float64(d.Desired))
		}
		b := 0.0
		if d.Bottleneck {
			b = 1
		}
		m.bottleneck.WithLabelValues(s).Set(b)
		m.recordDecision(d)
		for _, r := range d.Signals {
			if r.Status != policy.StatusOK {
				continue
			}
			k := [3]string{s, r.Name, string(r.Kind)}
			seenSig[k] = true
			m.signalValue.WithLabelValues(k[:]...).Set(r.Value)
			m.signalTarget.WithLabelValues(k[:]...).Set(r.Target)
		}
	}
	// A signal that stopped being usable must not keep showing its last
	// value as if it were current.
	deleteVanished(m.signals, seenSig, func(k [3]string) []string { return k[:] }, m.signalValue, m.signalTarget)
	m.signals = seenSig
	for s := range m.services {
		if !seen[s] {
			for _, v := range []*prometheus.GaugeVec{m.current, m.desired, m.recommended, m.ready, m.bottleneck} {
				v.DeleteLabelValues(s)
			}
			if old, ok := m.decisions[s]; ok {
				m.decision.DeleteLabelValues(old[:]...)
				delete(m.decisions, s)
			}
		}
	}
	m.services = seen

	seenH := make(map[[2]string]bool, len(t.HandedOff))
	for s, who := range t.HandedOff {
		k := [2]string{s, loop.HandoffOwner(who)}
		seenH[k] = true
		m.handoffs.WithLabelValues(k[:]...).Set(1)
	}
	for k := range m.handoff {
		if !seenH[k] {
			m.handoffs.DeleteLabelValues(k[:]...)
		}
	}
	m.handoff = seenH

	for s, violation := range t.Pinned {
		v := 0.0
		if violation != "" {
			v = 1
		}
		m.pinnedViolation.WithLabelValues(s).Set(v)
	}
	for s := range m.pinned {
		if _, ok := t.Pinned[s]; !ok {
			m.pinnedViolation.DeleteLabelValues(s)
		}
	}
	m.pinned = make(map[string]bool, len(t.Pinned))
	for s := range t.Pinned {
		m.pinned[s] = true
	}
	// Without a mesh the graph is only the decided services, which the
	// per-service series already say: its gauges would double them (and,
	// at a thousand services, add three thousand series for nothing).
	if t.Snapshot.Mesh == nil {
		m.graph.record(Graph{})
	} else {
		m.graph.record(BuildGraph(t))
	}
}

// recordDecision keeps one decision_info series per service, with the last
// decision's bounded labels.
func (m *Metrics) recordDecision(d policy.Decision) {
	dir := limitNone
	switch {
	case d.Desired > d.Current:
		dir = directionUp
	case d.Desired < d.Current:
		dir = directionDown
	}
	lim := string(d.LimitedBy)
	if lim == "" {
		lim = limitNone
	}
	hpa := d.ScalingLimited.String()
	if hpa == "" {
		hpa = limitNone
	}
	k := [4]string{d.Service, dir, lim, hpa}
	if old, ok := m.decisions[d.Service]; ok && old != k {
		m.decision.DeleteLabelValues(old[:]...)
	}
	m.decisions[d.Service] = k
	m.decision.WithLabelValues(k[:]...).Set(1)
}

// deleteVanished deletes from vecs the label sets of the keys that were in
// old and are not in cur, so a series that left the tick stops showing its
// last value as if it were current.
func deleteVanished[K comparable](old, cur map[K]bool, labels func(K) []string, vecs ...*prometheus.GaugeVec) {
	for k := range old {
		if !cur[k] {
			for _, v := range vecs {
				v.DeleteLabelValues(labels(k)...)
			}
		}
	}
}
