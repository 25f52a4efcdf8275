package demo

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Source label values, as the live collector names them: the simulated
// cluster answers in each one's place (its Prometheus series, its RabbitMQ
// queues, its metrics.k8s.io pod samples).
const (
	sourcePrometheus = "prometheus"
	sourceRabbitMQ   = "rabbitmq"
	sourceKubernetes = "kubernetes"
)

// sourceMetrics exports the live collector's source health series for the
// simulated sources, under the same names and labels (record/METRICS.md),
// so the dashboard's source panels show the demo's collections too.
type sourceMetrics struct {
	inner    loop.Collector
	up       *prometheus.GaugeVec
	breaker  *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	queries  *prometheus.CounterVec
}

func newSourceMetrics(r prometheus.Registerer, inner loop.Collector, cfg *config.Config) *sourceMetrics {
	m := &sourceMetrics{
		inner: inner,
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "elmascale_source_up",
			Help: "1 when the last collection from the signal source succeeded, else 0. source: prometheus, rabbitmq, kubernetes (in the demo, the simulated cluster in their place).",
		}, []string{"source"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "elmascale_source_breaker_state",
			Help: "1 for the circuit breaker state the source is in, 0 for the others. state: closed, half-open, open.",
		}, []string{"source", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elmascale_source_query_duration_seconds",
			Help:    "Duration of one request to a signal source (in the demo, one collection from the simulated cluster).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"source"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elmascale_source_errors_total",
			Help: "Failed requests to signal sources. reason: timeout, connection, http_status, auth, bad_response, query, breaker_open, config, api.",
		}, []string{"source", "reason"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elmascale_source_queries_total",
			Help: "Requests sent to signal sources.",
		}, []string{"source"}),
	}
	if r != nil {
		r.MustRegister(m.up, m.breaker, m.duration, m.errors, m.queries)
	}
	for source := range queriesPerTick(cfg) {
		m.up.WithLabelValues(source)
		m.queries.WithLabelValues(source)
		m.errors.WithLabelValues(source, "api")
		for _, st := range []string{"closed", "half-open", "open"} {
			v := 0.0
			if st == "closed" {
				v = 1
			}
			m.breaker.WithLabelValues(source, st).Set(v)
		}
	}
	return m
}

// Collect collects from the simulated cluster and records it as the live
// collector records its sources: one query per metric definition, one
// RabbitMQ call per queue signal, one pod metrics list.
func (m *sourceMetrics) Collect(ctx context.Context, cfg *config.Config, now time.Time) (loop.Signals, error) {
	start := time.Now()
	sig, err := m.inner.Collect(ctx, cfg, now)
	took := time.Since(start).Seconds()
	for source, n := range queriesPerTick(cfg) {
		m.queries.WithLabelValues(source).Add(float64(n))
		m.duration.WithLabelValues(source).Observe(took)
		if err != nil {
			m.errors.WithLabelValues(source, "api").Inc()
			m.up.WithLabelValues(source).Set(0)
		} else {
			m.up.WithLabelValues(source).Set(1)
		}
	}
	return sig, err
}

// queriesPerTick counts what one tick asks of each source for cfg.
func queriesPerTick(cfg *config.Config) map[string]int {
	out := map[string]int{}
	metrics := map[string]bool{}
	for _, s := range cfg.Services {
		for _, sg := range s.Signals {
			switch {
			case sg.Kind == policy.KindUtilization:
				out[sourceKubernetes] = 1
			case sg.Kind == policy.KindQueue && sg.Queue != nil && len(sg.Queue.Queues) > 0:
				out[sourceRabbitMQ]++
			case sg.Kind == policy.KindQueue && sg.Queue != nil:
				for _, name := range []string{sg.Queue.Backlog, sg.Queue.ArrivalRate, sg.Queue.CompletionRate} {
					if name != "" {
						metrics[name] = true
					}
				}
			case sg.Metric != "":
				metrics[sg.Metric] = true
			}
		}
	}
	if len(metrics) > 0 {
		out[sourcePrometheus] = len(metrics)
	}
	return out
}
