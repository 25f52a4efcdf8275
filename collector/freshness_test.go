package collector

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/policy"
)

// Verifies the query sent for each metric definition: its own query or'ed
// with the newest sample time of each of its selectors by key, the
// stalest of several; left alone when it reads no series or is no vector.
func TestFreshnessQuery(t *testing.T) {
	for _, tc := range []struct{ q, want string }{
		{`sum by (service) (rate(x{job="a"}[1m]))`,
			`(sum by (service) (rate(x{job="a"}[1m]))) or label_replace(max by (service) (timestamp({__name__="x",job="a"})), "elmascale_sample_time", "1", "", "")`},
		{`sum by (service) (a) / sum by (service) (b)`,
			`(sum by (service) (a) / sum by (service) (b)) or label_replace(min by (service) (label_replace(max by (service) (timestamp({__name__="a"})), "elmascale_selector", "0", "", "") or label_replace(max by (service) (timestamp({__name__="b"})), "elmascale_selector", "1", "", "")), "elmascale_sample_time", "1", "", "")`},
		{`vector(1)`, `vector(1)`},
		{`scalar(x)`, `scalar(x)`},
		{`sum by (service) (`, `sum by (service) (`},
	} {
		var f freshnessQueries
		if got := f.get(tc.q, "service"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.q, got, tc.want)
		}
	}
}

// Verifies that a sample stamped beyond the allowed clock skew ahead of the
// tick is invalid (an hour ahead would otherwise look fresh for an hour),
// while one within the skew is used.
func TestFutureSampleIsInvalid(t *testing.T) {
	cfg := parseConfig(t, `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
metrics:
  load: {prometheus: {query: "sum by (service) (load)"}}
services:
  worker: {signals: [{name: load, perReplica: {metric: load, targetPerReplica: 10}}]}
`)
	for _, tc := range []struct {
		ahead time.Duration
		want  policy.ObservationStatus
	}{{time.Hour, policy.StatusInvalid}, {10 * time.Second, policy.StatusOK}} {
		p := newCannedProm(t, map[string]cannedAnswer{"sum by (service) (load)": ok(vector("service", anyTime.Add(tc.ahead), [2]string{"worker", "42"}))})
		c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL})
		o := collect(t, c, cfg, anyTime)["worker"]["load"]
		if o.Status != tc.want {
			t.Errorf("sample %s ahead: %s (%s), want %s", tc.ahead, o.Status, o.Error, tc.want)
		}
		if tc.want == policy.StatusInvalid && !strings.Contains(o.Error, "1h0m0s ahead of this tick") {
			t.Errorf("error %q does not say how far ahead", o.Error)
		}
	}
}

// Verifies against a real Prometheus that a series whose scrapes stopped
// turns stale after staleAfter. Its exporter stamps samples itself (as
// federation and some exporters do), so Prometheus writes no staleness
// marker when the target goes away and keeps answering the series, with
// the evaluation time, for its five-minute lookback.
func TestStaleSeriesFromRealPrometheus(t *testing.T) {
	var down atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE elma365_load gauge\nelma365_load{service=\"worker\"} 42 %d\n", time.Now().UnixMilli())
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	prom := promtest.Start(t, promtest.Target{Addr: ln.Addr().String()})

	cfg := parseConfig(t, `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
interval: 1s
staleAfter: 3s
metrics:
  load: {prometheus: {query: "sum by (service) (elma365_load)"}}
services:
  worker: {signals: [{name: load, perReplica: {metric: load, targetPerReplica: 10}}]}
`)
	c, _ := newCollector(t, Options{PrometheusURL: prom.URL})
	decide := func() policy.SignalResult {
		now := time.Now()
		sigs := collect(t, c, cfg, now)
		plan, _ := policy.Decide(cfg.Policy, snapshotOf(cfg, sigs, 2, now), policy.State{}, now)
		d, _ := plan.Decision("worker")
		return d.Signals[0]
	}
	if r := decide(); r.Status != policy.StatusOK || !strings.Contains(r.Note, "total 42") {
		t.Fatalf("while scraped: %+v", r)
	}

	down.Store(true)
	stopped := time.Now()
	time.Sleep(5 * time.Second)
	got, err := prom.Query(context.Background(), "elma365_load")
	if err != nil || len(got) != 1 {
		t.Fatalf("precondition: Prometheus should still answer the unscraped series: %v %v", got, err)
	}
	r := decide()
	t.Logf("%s after the last scrape: %s (%s)", time.Since(stopped).Round(100*time.Millisecond), r.Status, r.Note)
	if r.Status != policy.StatusStale {
		t.Errorf("a series not scraped for 5s with staleAfter 3s is %s, want stale", r.Status)
	}
}
