package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/policy"
)

// Verifies recommend against a real Prometheus: one live collection of a
// latency histogram and an in-flight gauge, and a decision table built on
// it, with the latency breach of main attributed to its saturated
// dependency and nothing written anywhere.
func TestRecommendLivePrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "app_request_duration_seconds", Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"service"})
	inflight := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_requests_in_flight"}, []string{"service"})
	reg.MustRegister(lat, inflight)
	prom := promtest.Start(t, promtest.Target{Addr: promtest.ServeRegistry(t, reg), Labels: map[string]string{"namespace": "shop"}})

	// Feed observations for a while so rate() over the window has data.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for i := 0; i < 20; i++ {
				lat.WithLabelValues("gateway").Observe(2.0) // far above its 500ms SLO
				lat.WithLabelValues("orders").Observe(0.08)
			}
		}
	}()
	inflight.WithLabelValues("orders").Set(900) // 9 replicas' worth at 100 each, with 2 running
	inflight.WithLabelValues("gateway").Set(50)

	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgPath, []byte(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
metrics:
  p95:
    prometheus:
      query: histogram_quantile(0.95, sum by (service, le) (rate(app_request_duration_seconds_bucket{namespace="shop"}[20s])))
  inflight:
    prometheus:
      query: sum by (service) (app_requests_in_flight{namespace="shop"})
services:
  gateway:
    minReplicas: 2
    maxReplicas: 10
    dependsOn: [orders]
    signals:
      - {name: latency, latency: {metric: p95, quantile: 0.95, slo: 500ms}}
      - {name: in-flight, perReplica: {metric: inflight, targetPerReplica: 100}}
  orders:
    minReplicas: 2
    maxReplicas: 10
    signals:
      - {name: in-flight, perReplica: {metric: inflight, targetPerReplica: 100}}
`), 0o644)

	var plan policy.Plan
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out, errOut := run(t, "recommend", "--config", cfgPath, "--prometheus", prom.URL, "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(errOut, "assumed at each service's minReplicas") {
			t.Errorf("without a kubeconfig the assumption must be stated: %q", errOut)
		}
		plan = policy.Plan{}
		if err := json.Unmarshal([]byte(out), &plan); err != nil {
			t.Fatal(err)
		}
		g, _ := plan.Decision("gateway")
		if len(g.Signals) == 2 && g.Signals[0].Status == policy.StatusOK && g.Signals[0].Value > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("latency never showed up in Prometheus: %+v", g.Signals)
		}
		time.Sleep(time.Second)
	}
	g, _ := plan.Decision("gateway")
	o, _ := plan.Decision("orders")
	// p95 of observations all at 2s falls in the (1, 2.5] bucket: histogram_quantile interpolates to 2.425.
	if v := g.Signals[0].Value; v < 1 || v > 2.5 {
		t.Errorf("gateway p95 = %v, want within the (1s, 2.5s] bucket", v)
	}
	// orders needs 9; the default scale-up rate allows +4 from 2 in one step.
	if !o.Bottleneck || o.Proposal != 9 || o.Desired != 6 || o.LimitedBy != policy.LimitRate || g.Desired != 2 {
		t.Errorf("orders %d→%d (proposal %d, limited by %q) bottleneck=%v, gateway %d→%d: want orders proposed 9, rate-limited to 6, as the bottleneck, and gateway kept",
			o.Current, o.Desired, o.Proposal, o.LimitedBy, o.Bottleneck, g.Current, g.Desired)
	}
	if got := g.Signals[0].AttributedTo; len(got) != 1 || got[0] != "orders" {
		t.Errorf("gateway latency attributed to %v, want [orders]", got)
	}
}

// Verifies recommend against a Prometheus that refuses connections says
// in the table's output what failed and why, once per signal, not only
// "latency failed" in each reason.
func TestRecommendSaysWhatFailed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("KUBECONFIG", "")
	code, out, errOut := run(t, "recommend", "--prometheus", "http://"+addr, "--source-timeout", "2s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "latency failed on auth, collector, main, processor: prometheus: query request_latency_p95: "
	i := strings.Index(out, want)
	if i < 0 || !strings.Contains(out[i:], "connection refused") {
		t.Errorf("output does not say the latency query was refused:\n%s", out)
	}
	if n := strings.Count(out, "connection refused"); n != 2 {
		t.Errorf("the refusal is said %d times, want once per failing signal (latency, in-flight):\n%s", n, out)
	}
}
