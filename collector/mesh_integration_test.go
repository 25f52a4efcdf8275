package collector

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/policy"
)

// linkerdBuckets are the proxy's response_latency_ms bucket bounds, in
// milliseconds.
var linkerdBuckets = []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}

// linkerdProxy is one pod's proxy as Prometheus scrapes it: the series
// Linkerd documents, labelled as the proxy labels them (direction, the
// dst_* labels and authority of outbound calls, classification and
// status_code of responses). The pod's own namespace and deployment are
// added by the scrape, as Linkerd-viz's relabeling adds them.
type linkerdProxy struct {
	mu        *sync.Mutex
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

// call is one kind of traffic a proxy sees: inbound when dst is empty,
// else an outbound call to dst (a deployment of elma365, or a service in
// dstNamespace when it is set).
type call struct {
	dst, dstNamespace, dstService string
	// latency of each call in milliseconds.
	latency float64
	failed  bool
}

func newLinkerdProxy(mu *sync.Mutex) *linkerdProxy {
	dst := []string{"direction", "authority", "dst_namespace", "dst_deployment", "dst_service", "tls"}
	p := &linkerdProxy{
		mu:        mu,
		reg:       prometheus.NewRegistry(),
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "request_total", Help: "Total count of HTTP requests."}, dst),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "response_total", Help: "Total count of HTTP responses."}, append(dst, "classification", "status_code")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "response_latency_ms", Help: "Elapsed times between a request's headers being received and its response stream completing",
			Buckets: linkerdBuckets}, append(dst, "status_code")),
	}
	p.reg.MustRegister(p.requests, p.responses, p.latency)
	return p
}

func (p *linkerdProxy) Gather() ([]*dto.MetricFamily, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reg.Gather()
}

// observe counts n calls; the caller holds p.mu.
func (p *linkerdProxy) observe(c call, n int) {
	direction, authority, ns, dep, svc := "inbound", "", "", "", ""
	if c.dst != "" || c.dstService != "" {
		direction = "outbound"
		ns = c.dstNamespace
		if ns == "" {
			ns = "elma365"
			dep = c.dst
			svc = c.dst
		} else {
			svc = c.dstService
		}
		authority = svc + "." + ns + ".svc.cluster.local:8080"
	}
	labels := []string{direction, authority, ns, dep, svc, "true"}
	class, status := "success", "200"
	if c.failed {
		class, status = "failure", "500"
	}
	p.requests.WithLabelValues(labels...).Add(float64(n))
	p.responses.WithLabelValues(append(labels, class, status)...).Add(float64(n))
	h := p.latency.WithLabelValues(append(labels, status)...)
	for range n {
		h.Observe(c.latency)
	}
}

// The ELMA365 graph fed every 100 ms (per batch; ×10 for per second):
//   - main: 5 requests in, each calling processor once; 250 ms at main;
//   - processor: 5 in, each calling files once and postgres (a data store
//     outside the mesh, a StatefulSet in elma365-dbs) once; 220 ms;
//   - collector: 3 in, each calling files twice; 250 ms;
//   - files, I/O-bound, two pods: 11 in (5 from processor, 6 from
//     collector), 120 ms each, one of the eleven failing;
//   - postgres: 80 ms per call as processor's proxy sees it, slow.
//
// Own latency is inbound less the weighted calls: processor 220 − 120 − 80
// = 20 ms, collector 250 − 2 × 120 = 10 ms, main 250 − 220 = 30 ms.
func feedLinkerd(t *testing.T, mu *sync.Mutex, proxies map[string][]*linkerdProxy) {
	t.Helper()
	pod := func(name string, i int) *linkerdProxy { return proxies[name][i] }
	batch := func() {
		pod("main", 0).observe(call{latency: 250}, 5)
		pod("main", 0).observe(call{dst: "processor", latency: 221}, 5)
		pod("processor", 0).observe(call{latency: 220}, 5)
		pod("processor", 0).observe(call{dst: "files", latency: 121}, 5)
		pod("processor", 0).observe(call{dstService: "postgres", dstNamespace: "elma365-dbs", latency: 80}, 5)
		pod("collector", 0).observe(call{latency: 250}, 3)
		pod("collector", 0).observe(call{dst: "files", latency: 121}, 6)
		// files' two pods share the inbound load: 6 and 5, one failure.
		pod("files", 0).observe(call{latency: 120}, 6)
		pod("files", 1).observe(call{latency: 120}, 4)
		pod("files", 1).observe(call{latency: 120, failed: true}, 1)
	}
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
			for due := int(time.Since(start) / feedPeriod); n < due; n++ {
				mu.Lock()
				batch()
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// startLinkerdPrometheus serves one proxy exporter per pod of the graph
// and a real Prometheus scraping them as Linkerd-viz does (job
// linkerd-proxy; namespace, deployment and pod from the pod), and returns
// once 10 s of scrapes are stored, so the 10 s windows are full.
func startLinkerdPrometheus(t *testing.T) *promtest.Server {
	t.Helper()
	var mu sync.Mutex
	pods := map[string]int{"main": 1, "processor": 1, "collector": 1, "files": 2}
	proxies := map[string][]*linkerdProxy{}
	var targets []promtest.Target
	for name, n := range pods {
		for i := range n {
			p := newLinkerdProxy(&mu)
			proxies[name] = append(proxies[name], p)
			targets = append(targets, promtest.Target{Job: "linkerd-proxy", Addr: promtest.ServeRegistry(t, p),
				Labels: map[string]string{"namespace": "elma365", "deployment": name, "pod": name + "-7d9f8c6b5-" + string(rune('a'+i))}})
		}
	}
	feedLinkerd(t, &mu, proxies)
	srv := promtest.Start(t, targets...)
	waitQuery(t, srv, `count_over_time(up{job="linkerd-proxy",deployment="main"}[10s]) >= 10`, 40*time.Second)
	return srv
}

// meshRateTolerance: rate() over 10 s of 1 s scrapes of 100 ms batches is
// off by a batch at each end of the window, and more when a busy machine
// delays a scrape; the checks that matter (means, weights, own latency) are
// ratios of one proxy's counters and exact.
const meshRateTolerance = 0.2

const meshYAML = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
interval: 5s
mesh:
  linkerd: {window: 10s, selector: 'job="linkerd-proxy"'}
services:
  main: {signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]}
  processor: {signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]}
  collector: {signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]}
  files: {signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]}
`

// Verifies against a real Prometheus scraping Linkerd-shaped proxies that
// the mesh observation is the graph that was fed: every edge with its
// caller, callee and rate (files reached from two callers, postgres as an
// External destination), every workload's inbound rate, success share and
// mean latency summed over its pods, the p95 by histogram_quantile, and
// from them the own-latency inputs (inbound less weighted calls) that make
// the I/O-bound files and the slow data store stand out; in two queries.
func TestRealPrometheusLinkerdMesh(t *testing.T) {
	srv := startLinkerdPrometheus(t)
	cfg := parseConfig(t, meshYAML)
	c, _ := newCollector(t, Options{PrometheusURL: srv.URL, QueryTimeout: 5 * time.Second})
	before := counterValue(t, c.m.queries.WithLabelValues(SourcePrometheus))
	now := time.Now()
	o := c.CollectMesh(context.Background(), cfg, now)
	if got := counterValue(t, c.m.queries.WithLabelValues(SourcePrometheus)) - before; got != 2 {
		t.Errorf("%v queries for the mesh, want 2 (inbound, outbound)", got)
	}
	if o.Status != policy.StatusOK || o.Error != "" {
		t.Fatalf("mesh %s: %s", o.Status, o.Error)
	}
	if o.Window != 10*time.Second || o.Time.After(now) || now.Sub(o.Time) > 3*time.Second {
		t.Errorf("window %s, time %s before the tick; want 10s, the newest scrape within 3s", o.Window, now.Sub(o.Time))
	}

	wantEdges := []struct {
		from, to string
		external bool
		rate     float64
		latency  float64
	}{
		{"collector", "files", false, 60, 0.121},
		{"main", "processor", false, 50, 0.221},
		{"processor", "files", false, 50, 0.121},
		{"processor", "postgres.elma365-dbs", true, 50, 0.080},
	}
	if len(o.Edges) != len(wantEdges) {
		t.Fatalf("edges %+v, want %d", o.Edges, len(wantEdges))
	}
	for i, w := range wantEdges {
		e := o.Edges[i]
		if e.From != w.from || e.To != w.to || e.External != w.external {
			t.Errorf("edge %d is %s→%s external=%v, want %s→%s external=%v", i, e.From, e.To, e.External, w.from, w.to, w.external)
			continue
		}
		if !within(e.Rate, w.rate, meshRateTolerance) || !within(e.LatencyMean, w.latency, 1e-9) || e.SuccessShare != 1 {
			t.Errorf("%s→%s: rate %.2f/s mean %.4fs success %.3f; want %v/s ±20%%, %vs, 1", e.From, e.To, e.Rate, e.LatencyMean, e.SuccessShare, w.rate, w.latency)
		}
	}

	wantIn := map[string]struct{ rate, mean, p95, success float64 }{
		"main":      {50, 0.250, 0.2 + 0.1*0.95, 1},
		"processor": {50, 0.220, 0.2 + 0.1*0.95, 1},
		"collector": {30, 0.250, 0.2 + 0.1*0.95, 1},
		"files":     {110, 0.120, 0.1 + 0.1*0.95, 10.0 / 11},
	}
	if len(o.Inbound) != len(wantIn) {
		t.Errorf("inbound for %d workloads, want %d: %+v", len(o.Inbound), len(wantIn), o.Inbound)
	}
	for name, w := range wantIn {
		in, ok := o.Inbound[name]
		if !ok {
			t.Errorf("no inbound for %s", name)
			continue
		}
		// The p95 is histogram_quantile's interpolation inside the one
		// bucket all of a workload's latencies fall in: exact.
		if !within(in.RequestRate, w.rate, meshRateTolerance) || !within(in.ResponseRate, w.rate, meshRateTolerance) ||
			!within(in.LatencyMean, w.mean, 1e-9) || !within(in.LatencyP95, w.p95, 1e-9) || !within(in.SuccessShare, w.success, 0.02) {
			t.Errorf("%s: %+v; want rate %v/s, mean %vs, p95 %vs, success %.3f", name, in, w.rate, w.mean, w.p95, w.success)
		}
	}

	// Own latency from the observation: inbound mean less each call's mean
	// weighted by calls per inbound request. A caller's inbound and
	// outbound counters are scraped from one proxy at one instant, so the
	// weights are exact although each rate carries ±10%.
	own := func(name string) float64 {
		l := o.Inbound[name].LatencyMean
		for _, e := range o.Edges {
			if e.From == name {
				l -= e.Rate / o.Inbound[name].RequestRate * e.LatencyMean
			}
		}
		return l
	}
	for name, want := range map[string]float64{"files": 0.120, "processor": 0.019, "collector": 0.008, "main": 0.029} {
		if got := own(name); math.Abs(got-want) > 1e-6 {
			t.Errorf("own latency of %s = %.6fs, want %.3fs", name, got, want)
		}
	}
	// files (I/O-bound, no calls of its own) and the data store keep the
	// largest own shares; processor's own share is small though its
	// inbound latency is the highest of the middle.
	if own("files") < 4*own("processor") || own("files") < 4*own("collector") {
		t.Errorf("own latency files %.3f, processor %.3f, collector %.3f: files should dominate", own("files"), own("processor"), own("collector"))
	}
}

// Verifies that the mesh answers fail inside the observation: Prometheus
// unreachable gives a failed observation naming the connection, never a
// panic; an answer over the series bound fails with an error that names
// the bound and what to narrow; a selector matching nothing is missing
// with a sentence saying what was looked for.
func TestRealPrometheusLinkerdMeshFailures(t *testing.T) {
	srv := startLinkerdPrometheus(t)
	cfg := parseConfig(t, meshYAML)

	t.Run("too many series", func(t *testing.T) {
		c, _ := newCollector(t, Options{PrometheusURL: srv.URL, QueryTimeout: 5 * time.Second, MaxSeries: 5})
		o := c.CollectMesh(context.Background(), cfg, time.Now())
		if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "more than the limit of 5") || !strings.Contains(o.Error, "mesh.linkerd.selector") {
			t.Errorf("mesh %s: %q; want failed naming the limit of 5 and the selector", o.Status, o.Error)
		}
		if c.promGuard.state().String() != "closed" {
			t.Errorf("breaker %s after an oversized answer; a query's fault must not open it", c.promGuard.state())
		}
	})
	t.Run("too many bytes", func(t *testing.T) {
		c, _ := newCollector(t, Options{PrometheusURL: srv.URL, QueryTimeout: 5 * time.Second, MaxResponseBytes: 512})
		o := c.CollectMesh(context.Background(), cfg, time.Now())
		if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "answer too large") {
			t.Errorf("mesh %s: %q; want failed, answer too large", o.Status, o.Error)
		}
	})
	t.Run("nothing matches", func(t *testing.T) {
		c, _ := newCollector(t, Options{PrometheusURL: srv.URL, QueryTimeout: 5 * time.Second})
		other := parseConfig(t, strings.Replace(meshYAML, `job="linkerd-proxy"`, `job="not-linkerd"`, 1))
		o := c.CollectMesh(context.Background(), other, time.Now())
		if o.Status != policy.StatusMissing || !strings.Contains(o.Error, `job="not-linkerd"`) {
			t.Errorf("mesh %s: %q; want missing naming the selector", o.Status, o.Error)
		}
	})
	t.Run("prometheus down", func(t *testing.T) {
		c, _ := newCollector(t, Options{PrometheusURL: srv.URL, QueryTimeout: 2 * time.Second, Breaker: BreakerSettings{FailureThreshold: 2}})
		srv.Stop()
		for i := range 3 {
			o := c.CollectMesh(context.Background(), cfg, time.Now())
			if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "prometheus") {
				t.Fatalf("collection %d: mesh %s: %q; want failed naming prometheus", i, o.Status, o.Error)
			}
			if i == 2 && !strings.Contains(o.Error, "circuit breaker open") {
				t.Errorf("third collection: %q; want the open breaker", o.Error)
			}
		}
	})
}
