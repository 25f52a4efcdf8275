package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/dashboard"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/scaler"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

const e2eConfig = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: dash
interval: 1s
budget:
  maxTotalReplicas: 20
metrics:
  inflight:
    prometheus:
      query: sum by (service) (app_in_flight)
  latency:
    prometheus:
      query: max by (service) (app_latency_seconds)
  backlog:
    prometheus:
      query: sum by (service) (app_backlog)
services:
  api:
    minReplicas: 1
    maxReplicas: 4
    signals:
      - {name: in-flight, perReplica: {metric: inflight, targetPerReplica: 10}}
      - {name: latency, latency: {metric: latency, quantile: 0.95, slo: 500ms}}
      - {name: jobs, queue: {backlogMetric: backlog, drainTime: 30s, throughputPerReplica: 5}}
  steady:
    minReplicas: 1
    maxReplicas: 2
    signals:
      - {name: cpu, utilization: {resource: cpu, targetPercent: 80}}
  legacy:
    minReplicas: 1
    maxReplicas: 3
    signals:
      - {name: cpu, utilization: {resource: cpu, targetPercent: 50}}
  worker:
    minReplicas: 1
    maxReplicas: 3
    signals:
      - {name: scripts, queue: {rabbitmq: {queues: [w]}, drainTime: 30s}}
# Linkerd-shaped proxy series come from the application's registry below.
mesh:
  linkerd: {window: 10s}
`

// Verifies, end to end, that a real Prometheus scraping running daemons
// returns data for every query of the dashboard: one daemon applies, one
// only recommends (with its RabbitMQ source down, so source errors exist),
// over a real API server where one target is owned by an HPA.
func TestEveryQueryHasDataFromRunningDaemons(t *testing.T) {
	c := testcluster.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	// A namespace with the RBAC elmascale ships, so its collector may read
	// pods and their metrics there.
	ns := kubetest.Namespace(t, c)
	for _, name := range []string{"api", "legacy", "steady"} {
		if _, err := admin.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "legacy"},
			MinReplicas:    new(int32(1)), MaxReplicas: 3,
		},
	}
	if _, err := admin.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The application's own metric, and a proxy so the daemons can be
	// given Prometheus's address before Prometheus (which must know theirs)
	// starts.
	app := prometheus.NewRegistry()
	inflight := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_in_flight"}, []string{"service"})
	latency := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_latency_seconds"}, []string{"service"})
	backlog := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_backlog"}, []string{"service"})
	app.MustRegister(inflight, latency, backlog)
	inflight.WithLabelValues("api").Set(5)
	latency.WithLabelValues("api").Set(0.2)
	backlog.WithLabelValues("api").Set(3)
	meshTraffic(ctx, t, app, ns)
	var promURL atomic.Pointer[url.URL]
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := promURL.Load()
		if u == nil {
			http.Error(w, "prometheus not started yet", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	})}
	proxyAddr := listen(t, proxy)

	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(e2eConfig, "namespace: dash", "namespace: "+ns, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	applyAddr := startDaemon(ctx, t, c, cfgPath, scaler.ModeApply, "http://"+proxyAddr, "http://127.0.0.1:1")
	dryAddr := startDaemon(ctx, t, c, cfgPath, scaler.ModeDryRun, "http://"+proxyAddr, "http://127.0.0.1:1")

	start := time.Now()
	prom := promtest.Start(t,
		promtest.Target{Job: "app", Addr: promtest.ServeRegistry(t, app)},
		promtest.Target{Job: "elmascale-apply", Addr: applyAddr, Labels: map[string]string{"namespace": "elmascale", "pod": "elmascale-0"}},
		promtest.Target{Job: "elmascale-dry-run", Addr: dryAddr, Labels: map[string]string{"namespace": "elmascale", "pod": "elmascale-1"}},
	)
	u, _ := url.Parse(prom.URL)
	promURL.Store(u)

	// Let a few scrapes see api at 1 replica, then load it: desired changes.
	time.Sleep(6 * time.Second)
	inflight.WithLabelValues("api").Set(35)
	time.Sleep(15 * time.Second)

	// Pod metrics take 30-40 s to first appear through metrics-server:
	// wait for every query to have data, up to a deadline.
	deadline := time.Now().Add(75 * time.Second)
	for {
		var empty []string
		for _, q := range dashboard.Queries() {
			n, err := rangeSamples(ctx, prom.URL, expand(q.Expr, ns), start, time.Now())
			if err != nil {
				t.Fatalf("%s: %v\n%s", q.Panel, err, q.Expr)
			}
			if n == 0 {
				empty = append(empty, q.Panel+": "+q.Expr)
			}
		}
		if len(empty) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queries without data from the running daemons:\n%s", strings.Join(empty, "\n"))
		}
		time.Sleep(2 * time.Second)
	}
	// Another managed namespace selects nothing: the variable filters.
	q := dashboard.Queries()[2]
	if n, err := rangeSamples(ctx, prom.URL, expand(q.Expr, "elsewhere"), start, time.Now()); err != nil || n != 0 {
		t.Errorf("%s with another managed namespace: %d samples (%v), want none\n%s", q.Panel, n, err, q.Expr)
	}
}

// meshTraffic serves what Linkerd's proxies of api and steady would: api
// receives 20 requests per second and calls steady once for each, steady
// answers in 50 ms, api in 80 ms. The series carry the pod's namespace and
// deployment labels themselves, as Linkerd-viz's scrape would add them.
func meshTraffic(ctx context.Context, t *testing.T, reg *prometheus.Registry, ns string) {
	t.Helper()
	labels := []string{"namespace", "deployment", "direction", "dst_namespace", "dst_deployment", "dst_service"}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "request_total"}, labels)
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "response_total"}, append(labels, "classification"))
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "response_latency_ms", Buckets: []float64{10, 50, 100, 500}}, labels)
	reg.MustRegister(requests, responses, latency)
	traffic := [][]string{
		{ns, "api", "inbound", "", "", ""},
		{ns, "api", "outbound", ns, "steady", "steady"},
		{ns, "steady", "inbound", "", "", ""},
	}
	ms := []float64{80, 50, 50}
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for i, l := range traffic {
				requests.WithLabelValues(l...).Add(2)
				responses.WithLabelValues(append(l, "success")...).Add(2)
				latency.WithLabelValues(l...).Observe(ms[i])
				latency.WithLabelValues(l...).Observe(ms[i])
			}
		}
	}()
}

// expand fills Grafana's variables as the dashboard would with the
// managed namespace ns and all services.
func expand(expr, ns string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$namespace", ns, "$service", ".*").Replace(expr)
}

func deployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				// KWOK reports this usage through metrics-server, for the
				// utilization panel.
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{testcluster.AnnotationUsageCPU: "40m"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: name + ":1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
			},
		},
	}
}

func listen(t *testing.T, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// startDaemon runs the real daemon with the real collector and returns
// its metrics address once it serves.
func startDaemon(ctx context.Context, t *testing.T, c *testcluster.Cluster, cfgPath string, mode scaler.Mode, promURL, rabbitURL string) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	col := kubetest.Collector(t, c, collector.Options{
		PrometheusURL: promURL, RabbitMQURL: rabbitURL, RabbitMQUser: "nobody", RabbitMQPasswordEnv: "ELMASCALE_E2E_UNSET",
		QueryTimeout: 2 * time.Second, Registerer: reg,
		// Prometheus starts after the daemons: recover from the open breaker quickly.
		Breaker: collector.BreakerSettings{FailureThreshold: 3, OpenFor: time.Second},
	})
	addr := make(chan string, 1)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(runCtx, daemon.Options{
			RESTConfig: c.AdminConfig, ConfigPath: cfgPath, Mode: mode, Collector: col, Registry: reg,
			MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0", Version: "e2e",
			OnListen: func(m, _ string) { addr <- m },
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("daemon (%s): %v", mode, err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("daemon (%s) did not start: %v", mode, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon (%s) did not start serving", mode)
	}
	return ""
}

// rangeSamples runs a range query the way Grafana does for the dashboard's
// time range and counts the points returned.
func rangeSamples(ctx context.Context, base, expr string, from, to time.Time) (int, error) {
	q := url.Values{"query": {expr}, "start": {fmt.Sprint(from.Unix())}, "end": {fmt.Sprint(to.Unix())}, "step": {"1"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query_range?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query failed: %s", body.Error)
	}
	n := 0
	for _, r := range body.Data.Result {
		n += len(r.Values)
	}
	return n, nil
}
