package collector

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/policy"
)

// The RabbitMQ node is shared by the tests of this binary (it boots in
// 8-15 s); Main stops it.
func TestMain(m *testing.M) { os.Exit(rabbittest.Main(m)) }

// loadExporter serves what ELMA365 services expose: per-service request
// histograms and in-flight gauges, and queue gauges and counters. Its
// Gather holds the same lock as the feeding batches, so a scrape never sees
// half a batch and histogram quantiles come out exact.
type loadExporter struct {
	mu        sync.Mutex
	reg       *prometheus.Registry
	latency   *prometheus.HistogramVec
	inflight  *prometheus.GaugeVec
	queue     *prometheus.GaugeVec
	unacked   *prometheus.GaugeVec
	published *prometheus.CounterVec
	completed *prometheus.CounterVec
}

func newLoadExporter() *loadExporter {
	e := &loadExporter{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elma365_request_duration_seconds",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"service"}),
		inflight:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elma365_requests_in_flight"}, []string{"service"}),
		queue:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elma365_queue_messages"}, []string{"service"}),
		unacked:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elma365_queue_messages_unacked"}, []string{"service"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elma365_queue_published_total"}, []string{"service"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elma365_queue_completed_total"}, []string{"service"}),
	}
	e.reg.MustRegister(e.latency, e.inflight, e.queue, e.unacked, e.published, e.completed)
	return e
}

func (e *loadExporter) Gather() ([]*dto.MetricFamily, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reg.Gather()
}

// feed runs batch every period, catching up on missed periods so the long
// run rate is exact however the goroutine is scheduled.
func (e *loadExporter) feed(t testing.TB, period time.Duration, batch func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		start := time.Now()
		n := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for due := int(time.Since(start) / period); n < due; n++ {
				e.mu.Lock()
				batch()
				e.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// ELMA365 load fed every 100 ms:
//   - auth: 20 requests, 18 of 30 ms and 2 of 300 ms, so 200 req/s and a p95
//     of 0.25 + 0.25×(19−18)/(20−18) = 0.375 s by histogram_quantile's
//     linear interpolation in the (0.25, 0.5] bucket;
//   - main: 10 requests of 700 ms, 100 req/s, p95 = 0.5 + 0.5×9.5/10 = 0.975 s;
//   - worker queue: 5 messages published and 4 completed, 50/s and 40/s.
const (
	wantAuthP95     = 0.375
	wantMainP95     = 0.975
	wantAuthRPS     = 200
	wantAuthIn      = 37
	wantMainIn      = 120
	wantBacklog     = 250
	wantUnacked     = 12
	wantArrival     = 50
	wantCompletion  = 40
	feedPeriod      = 100 * time.Millisecond
	rateTolerance   = 0.10 // rate() over 5 s of 1 s scrapes of 100 ms batches: ±1 batch per scrape edge
	quantileEpsilon = 1e-9
)

func (e *loadExporter) feedELMA365(t testing.TB) {
	e.mu.Lock()
	e.inflight.WithLabelValues("auth").Set(wantAuthIn)
	e.inflight.WithLabelValues("main").Set(wantMainIn)
	e.queue.WithLabelValues("worker").Set(wantBacklog)
	e.unacked.WithLabelValues("worker").Set(wantUnacked)
	e.mu.Unlock()
	e.feed(t, feedPeriod, func() {
		auth, main := e.latency.WithLabelValues("auth"), e.latency.WithLabelValues("main")
		for i := 0; i < 18; i++ {
			auth.Observe(0.03)
		}
		auth.Observe(0.3)
		auth.Observe(0.3)
		for i := 0; i < 10; i++ {
			main.Observe(0.7)
		}
		e.published.WithLabelValues("worker").Add(5)
		e.completed.WithLabelValues("worker").Add(4)
	})
}

const integrationYAML = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
defaults:
  minReplicas: 1
  maxReplicas: 20
  behavior:
    scaleDown:
      stabilizationWindow: 0s
      policies: [{type: Percent, value: 100, period: 15s}]
metrics:
  # As in the ELMA365 preset.
  request_latency_p95:
    prometheus:
      query: >-
        histogram_quantile(0.95, sum by (service, le)
        (rate(elma365_request_duration_seconds_bucket{namespace="elma365"}[1m])))
  requests_in_flight:
    prometheus:
      query: sum by (service) (elma365_requests_in_flight{namespace="elma365"})
  # Short windows so a test sees steady rates within seconds.
  request_rate:
    prometheus:
      query: sum by (service) (rate(elma365_request_duration_seconds_count{namespace="elma365"}[5s]))
  queue_backlog:
    prometheus:
      query: sum by (service) (elma365_queue_messages{namespace="elma365"})
  queue_arrival:
    prometheus:
      query: sum by (service) (rate(elma365_queue_published_total{namespace="elma365"}[5s]))
  queue_completion:
    prometheus:
      query: sum by (service) (rate(elma365_queue_completed_total{namespace="elma365"}[5s]))
  queue_unacked:
    prometheus:
      query: sum by (service) (elma365_queue_messages_unacked{namespace="elma365"})
  # A queue no exporter has: the optional in-progress count is left out.
  queue_unacked_absent:
    prometheus:
      query: sum by (service) (elma365_queue_messages_unacked_absent{namespace="elma365"})
services:
  auth:
    signals:
      - name: latency
        latency: {metric: request_latency_p95, quantile: 0.95, slo: 300ms}
      - name: in-flight
        perReplica: {metric: requests_in_flight, targetPerReplica: 100}
      - name: rps
        object: {metric: request_rate, target: 400}
  main:
    signals:
      - name: latency
        latency: {metric: request_latency_p95, quantile: 0.95, slo: 2s}
      - name: in-flight
        perReplica: {metric: requests_in_flight, targetPerReplica: 100}
  worker:
    signals:
      - name: queue
        queue:
          backlogMetric: queue_backlog
          arrivalRateMetric: queue_arrival
          completionRateMetric: queue_completion
          unackedMetric: queue_unacked
          concurrencyPerReplica: 4
          drainTime: 1m
      - name: queue-without-unacked
        queue:
          backlogMetric: queue_backlog
          arrivalRateMetric: queue_arrival
          completionRateMetric: queue_completion
          unackedMetric: queue_unacked_absent
          drainTime: 1m
  ghost:
    signals:
      - name: latency
        latency: {metric: request_latency_p95, quantile: 0.95, slo: 300ms}
`

// startELMA365Prometheus serves the fed exporter and starts a real
// Prometheus scraping it with namespace="elma365" added, as a Kubernetes
// relabeling would. It returns once 5 s of scrapes are stored, so 5 s rate
// windows are full.
func startELMA365Prometheus(t *testing.T) *promtest.Server {
	t.Helper()
	e := newLoadExporter()
	e.feedELMA365(t)
	srv := promtest.Start(t, promtest.Target{Job: "elma365", Addr: promtest.ServeRegistry(t, e), Labels: map[string]string{"namespace": "elma365"}})
	waitQuery(t, srv, `count_over_time(up{job="elma365"}[5s]) >= 5`, 30*time.Second)
	return srv
}

func waitQuery(t *testing.T, srv *promtest.Server, q string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := srv.Query(context.Background(), q)
		if err == nil && len(res) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still empty after %s (err %v)", q, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func within(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

// Verifies against a real Prometheus that the collected values equal what
// the exporter was fed: a histogram quantile exactly, gauges exactly, rates
// within 10%; that sample timestamps are the evaluation time; and that an
// unknown service is missing, not zero.
func TestRealPrometheusValues(t *testing.T) {
	srv := startELMA365Prometheus(t)
	cfg := parseConfig(t, integrationYAML)
	c, _ := newCollector(t, Options{PrometheusURL: srv.URL, QueryTimeout: 5 * time.Second})
	now := time.Now()
	sigs := collect(t, c, cfg, now)

	exact := []struct {
		key  string
		want float64
		eps  float64
	}{
		{"auth/latency", wantAuthP95, quantileEpsilon},
		{"main/latency", wantMainP95, quantileEpsilon},
		{"auth/in-flight", wantAuthIn, 0},
		{"main/in-flight", wantMainIn, 0},
		{"auth/rps", wantAuthRPS, rateTolerance},
	}
	for _, x := range exact {
		svc, sig, _ := strings.Cut(x.key, "/")
		o := sigs[svc][sig]
		if o.Status != policy.StatusOK {
			t.Errorf("%s: %s (%s)", x.key, o.Status, o.Error)
			continue
		}
		if !within(o.Value, x.want, x.eps) {
			t.Errorf("%s = %v, want %v within %.0e relative", x.key, o.Value, x.want, x.eps)
		}
		// Prometheus stamps instant-query samples with the evaluation
		// time; the collector reports the time of the newest scrape behind
		// them instead: at most a scrape interval (1 s) before now.
		if d := now.Sub(o.Time); d < -time.Millisecond || d > 2*time.Second {
			t.Errorf("%s: sample time %v is not the last scrape's before the evaluation time %v", x.key, o.Time, now)
		}
	}
	q := sigs["worker"]["queue"]
	if q.Status != policy.StatusOK || q.Queue == nil {
		t.Fatalf("worker queue: %+v", q)
	}
	// The backlog metric counts the messages waiting; the unacknowledged
	// ones, read apart, join it and are counted as in progress.
	if q.Queue.Unacked != wantUnacked || q.Queue.UnackedTime.IsZero() {
		t.Errorf("worker queue: %v unacked at %v, want %d with its sample time", q.Queue.Unacked, q.Queue.UnackedTime, wantUnacked)
	}
	if q.Queue.Backlog != wantBacklog+wantUnacked || !within(q.Queue.ArrivalRate, wantArrival, rateTolerance) || !within(q.Queue.CompletionRate, wantCompletion, rateTolerance) {
		t.Errorf("worker queue %+v, want backlog %d, arrival %d/s and completion %d/s within 10%%", *q.Queue, wantBacklog+wantUnacked, wantArrival, wantCompletion)
	}
	if a := sigs["worker"]["queue-without-unacked"]; a.Status != policy.StatusOK || a.Queue.Unacked != 0 || a.Queue.Backlog != wantBacklog {
		t.Errorf("worker queue with no unacknowledged series: %+v %+v, want ok with backlog %d and nothing in progress", a, a.Queue, wantBacklog)
	}
	if g := sigs["ghost"]["latency"]; g.Status != policy.StatusMissing {
		t.Errorf("ghost latency %+v, want missing", g)
	}
	t.Logf("auth p95 %.4f s, rps %.1f; worker backlog %.0f, arrival %.2f/s, completion %.2f/s",
		sigs["auth"]["latency"].Value, sigs["auth"]["rps"].Value, q.Queue.Backlog, q.Queue.ArrivalRate, q.Queue.CompletionRate)
}

// Verifies the breaker against a real Prometheus that is stopped mid-test:
// observations fail naming the source, the breaker opens, a decision holds
// the services it would otherwise scale down, and after a restart the
// breaker closes and values return.
func TestRealPrometheusStopAndRecover(t *testing.T) {
	srv := startELMA365Prometheus(t)
	cfg := parseConfig(t, integrationYAML)
	c, reg := newCollector(t, Options{
		PrometheusURL: srv.URL,
		QueryTimeout:  2 * time.Second,
		Breaker:       BreakerSettings{FailureThreshold: 2, OpenFor: time.Second},
	})
	const current = 8
	now := time.Now()
	sigs := collect(t, c, cfg, now)
	plan, _ := policy.Decide(cfg.Policy, snapshotOf(cfg, sigs, current, now), policy.State{}, now)
	if d, _ := plan.Decision("main"); d.Desired >= current {
		t.Fatalf("healthy: main desired %d (%s); want a scale-down to contrast with", d.Desired, d.Reason)
	}

	srv.Stop()
	for tick := 1; tick <= 3; tick++ {
		now = time.Now()
		sigs = collect(t, c, cfg, now)
		for _, key := range []string{"auth/latency", "main/in-flight", "worker/queue"} {
			svc, sig, _ := strings.Cut(key, "/")
			if o := sigs[svc][sig]; o.Status != policy.StatusFailed || !strings.HasPrefix(o.Error, "prometheus: ") {
				t.Fatalf("tick %d with Prometheus down, %s: %+v", tick, key, o)
			}
		}
		assertHeld(t, cfg, sigs, current, now, "auth", "main", "worker")
	}
	if st := c.promGuard.state().String(); st != "open" {
		t.Fatalf("breaker %s with Prometheus down, want open", st)
	}
	if o := sigs["main"]["latency"]; !strings.Contains(o.Error, "circuit breaker open") || !strings.Contains(o.Error, "connection refused") {
		t.Errorf("third tick: %q; want the open breaker and the last error", o.Error)
	}
	if got := gaugeValue(t, reg, "elmascale_source_breaker_state", map[string]string{"source": "prometheus", "state": "open"}); got != 1 {
		t.Errorf("exported breaker_state{open} = %v", got)
	}

	srv.Restart()
	time.Sleep(1100 * time.Millisecond) // OpenFor
	now = time.Now()
	sigs = collect(t, c, cfg, now)
	if o := sigs["main"]["in-flight"]; o.Status != policy.StatusOK || o.Value != wantMainIn {
		t.Fatalf("after restart: %+v, want ok %d", o, wantMainIn)
	}
	if st := c.promGuard.state().String(); st != "closed" {
		t.Errorf("breaker %s after recovery", st)
	}
	if got := gaugeValue(t, reg, "elmascale_source_up", map[string]string{"source": "prometheus"}); got != 1 {
		t.Errorf("exported source_up = %v after recovery", got)
	}
}

// gaugeValue reads one series from a registry.
func gaugeValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// countingProxy forwards to Prometheus and counts query requests.
type countingProxy struct {
	queries atomic.Int64
	srv     *httptest.Server
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/query") {
			p.queries.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// manyServicesYAML is n services that all read the same two metric
// definitions.
func manyServicesYAML(n int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
metrics:
  request_latency_p95:
    prometheus:
      query: histogram_quantile(0.95, sum by (service, le) (rate(elma365_request_duration_seconds_bucket{namespace="elma365"}[1m])))
  requests_in_flight:
    prometheus:
      query: sum by (service) (elma365_requests_in_flight{namespace="elma365"})
services:
`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  svc-%03d:
    signals:
      - {name: latency, latency: {metric: request_latency_p95, quantile: 0.95, slo: 300ms}}
      - {name: in-flight, perReplica: {metric: requests_in_flight, targetPerReplica: 100}}
`, i)
	}
	return b.String()
}

// Verifies, by counting at a proxy in front of a real Prometheus, that a
// tick sends one query per metric definition whether 25 or 500 services
// read them, and that every service gets its own value.
func TestRealPrometheusQueriesPerTick(t *testing.T) {
	e := newLoadExporter()
	e.mu.Lock()
	for i := 0; i < 500; i++ {
		e.inflight.WithLabelValues(fmt.Sprintf("svc-%03d", i)).Set(float64(i))
	}
	e.mu.Unlock()
	srv := promtest.Start(t, promtest.Target{Job: "elma365", Addr: promtest.ServeRegistry(t, e), Labels: map[string]string{"namespace": "elma365"}})
	proxy := newCountingProxy(t, srv.URL)
	for _, n := range []int{25, 500} {
		cfg := parseConfig(t, manyServicesYAML(n))
		c, _ := newCollector(t, Options{PrometheusURL: proxy.srv.URL})
		const ticks = 3
		before := proxy.queries.Load()
		var sigs map[string]map[string]policy.Observation
		for i := 0; i < ticks; i++ {
			sigs = collect(t, c, cfg, time.Now())
		}
		perTick := float64(proxy.queries.Load()-before) / ticks
		t.Logf("%d services: %.0f queries per tick for %d metric definitions", n, perTick, len(cfg.Metrics))
		if perTick != float64(len(cfg.Metrics)) {
			t.Errorf("%d services: %.1f queries per tick, want %d (one per metric definition)", n, perTick, len(cfg.Metrics))
		}
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("svc-%03d", i)
			if o := sigs[name]["in-flight"]; o.Status != policy.StatusOK || o.Value != float64(i) {
				t.Fatalf("%s in-flight %+v, want ok %d", name, o, i)
			}
		}
	}
}
