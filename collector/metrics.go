package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Source names, the values of the `source` label. Bounded: one per source
// kind, never a URL or a query.
const (
	SourcePrometheus = "prometheus"
	SourceRabbitMQ   = "rabbitmq"
	SourceKubernetes = "kubernetes"
)

// Error reasons, the values of the `reason` label.
const (
	ReasonTimeout     = "timeout"      // the per-query timeout expired
	ReasonConnection  = "connection"   // the source could not be reached
	ReasonHTTPStatus  = "http_status"  // a non-2xx answer other than an auth failure
	ReasonAuth        = "auth"         // 401 or 403: wrong or missing credentials
	ReasonBadResponse = "bad_response" // an answer that could not be decoded
	ReasonQuery       = "query"        // the source rejected a query (bad PromQL, wrong result type)
	ReasonBreakerOpen = "breaker_open" // the breaker refused the call
	ReasonConfig      = "config"       // local set-up, e.g. an unreadable password file
	ReasonAPI         = "api"          // any other error of a client library
)

var breakerStates = []gobreaker.State{gobreaker.StateClosed, gobreaker.StateHalfOpen, gobreaker.StateOpen}

// metrics are the collector's own health series. They exist whether or not
// a registerer was given, so tests can read them from a private registry.
type metrics struct {
	up       *prometheus.GaugeVec
	breaker  *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	queries  *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "elmascale_source_up",
			Help: "1 when the last collection from the signal source succeeded, else 0. source: prometheus, rabbitmq, kubernetes.",
		}, []string{"source"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "elmascale_source_breaker_state",
			Help: "1 for the circuit breaker state the source is in, 0 for the others. state: closed, half-open, open.",
		}, []string{"source", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elmascale_source_query_duration_seconds",
			Help:    "Duration of one request to a signal source (one PromQL query, one RabbitMQ call, one Kubernetes list).",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
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
	return m
}

// initSource creates the series of a configured source so dashboards see
// zeros rather than gaps before the first failure.
func (m *metrics) initSource(source string) {
	m.up.WithLabelValues(source)
	m.duration.WithLabelValues(source)
	m.queries.WithLabelValues(source)
	m.setBreaker(source, gobreaker.StateClosed)
}

func (m *metrics) setBreaker(source string, state gobreaker.State) {
	for _, s := range breakerStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.breaker.WithLabelValues(source, s.String()).Set(v)
	}
}

// SourceMetrics are the sources' health series for a process that answers
// in the sources' place (the demo's simulated cluster): the same names,
// labels and buckets as the collector's own, so one dashboard reads both.
type SourceMetrics struct{ m *metrics }

// NewSourceMetrics creates the series and registers them with r, if given.
func NewSourceMetrics(r prometheus.Registerer) *SourceMetrics {
	return &SourceMetrics{m: newMetrics(r)}
}

// InitSource creates source's series at zero, its breaker closed, as the
// collector does for each configured source; its count of ReasonAPI
// errors too, the one way a stand-in fails.
func (s *SourceMetrics) InitSource(source string) {
	s.m.initSource(source)
	s.m.errors.WithLabelValues(source, ReasonAPI)
}

// Observe records one collection from source: queries requests that took
// took each, and whether they failed (reason, one of the Reason values) or
// not (reason "").
func (s *SourceMetrics) Observe(source string, queries int, took time.Duration, reason string) {
	s.m.queries.WithLabelValues(source).Add(float64(queries))
	s.m.duration.WithLabelValues(source).Observe(took.Seconds())
	if reason != "" {
		s.m.errors.WithLabelValues(source, reason).Inc()
		s.m.up.WithLabelValues(source).Set(0)
		return
	}
	s.m.up.WithLabelValues(source).Set(1)
}
