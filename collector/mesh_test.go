package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// meshSeries renders an instant-vector answer of mesh parts at ts.
func meshSeries(ts time.Time, series ...map[string]string) string {
	var parts []string
	for _, s := range series {
		v := s["value"]
		labels := map[string]string{}
		for k, x := range s {
			if k != "value" {
				labels[k] = x
			}
		}
		b, _ := json.Marshal(labels)
		parts = append(parts, fmt.Sprintf(`{"metric":%s,"value":[%.3f,%q]}`, b, float64(ts.UnixMilli())/1000, v))
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`
}

func part(p string, value string, labels ...string) map[string]string {
	m := map[string]string{meshPartLabel: p, "value": value}
	for i := 0; i+1 < len(labels); i += 2 {
		m[labels[i]] = labels[i+1]
	}
	return m
}

func unixText(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

// Verifies the mesh answers' edge cases without a Prometheus: entries whose
// proxies stopped being scraped are dropped as stale and named, entries
// stamped ahead of the tick as invalid, a NaN p95 of an idle workload is
// unknown rather than wrong, a destination outside the namespace is
// External by its service, one without labels by its authority, and an
// answer with nothing left is stale, not ok.
func TestMeshObservationEdgeCases(t *testing.T) {
	cfg := parseConfig(t, meshYAML)
	qs := LinkerdQueries(cfg.Mesh)
	now := anyTime
	fresh, old, ahead := now.Add(-2*time.Second), now.Add(-10*time.Minute), now.Add(5*time.Minute)
	in := meshSeries(now,
		part(partRequests, "10", "deployment", "main"),
		part(partResponses, "9", "deployment", "main", "classification", "success"),
		part(partResponses, "1", "deployment", "main", "classification", "failure"),
		part(partLatencySum, "2000", "deployment", "main"),
		part(partLatencyCount, "10", "deployment", "main"),
		part(partP95, "350", "deployment", "main"),
		part(partSampleTime, unixText(fresh), "deployment", "main"),
		part(partRequests, "0", "deployment", "idle"),
		part(partP95, "NaN", "deployment", "idle"),
		part(partSampleTime, unixText(fresh), "deployment", "idle"),
		part(partRequests, "5", "deployment", "gone"),
		part(partSampleTime, unixText(old), "deployment", "gone"),
		part(partRequests, "5", "deployment", "skewed"),
		part(partSampleTime, unixText(ahead), "deployment", "skewed"),
	)
	out := meshSeries(now,
		part(partRequests, "4", "deployment", "main", "dst_namespace", "elma365", "dst_deployment", "auth", "dst_service", "auth"),
		part(partRequests, "3", "deployment", "main", "dst_namespace", "elma365-dbs", "dst_service", "postgres"),
		part(partRequests, "2", "deployment", "main", "authority", "api.example.com:443"),
		part(partRequests, "2", "deployment", "main", "dst_namespace", "elma365", "dst_service", "redis"),
		part(partSampleTime, unixText(fresh), "deployment", "main", "dst_namespace", "elma365", "dst_deployment", "auth", "dst_service", "auth"),
	)
	p := newCannedProm(t, map[string]cannedAnswer{qs.Inbound: ok(in), qs.Outbound: ok(out)})
	c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL})
	o := c.CollectMesh(context.Background(), cfg, now)
	if o.Status != policy.StatusOK {
		t.Fatalf("mesh %s: %s", o.Status, o.Error)
	}
	if m := o.Inbound["main"]; m.RequestRate != 10 || m.SuccessShare != 0.9 || m.LatencyMean != 0.2 || m.LatencyP95 != 0.35 {
		t.Errorf("main inbound %+v; want 10/s, 0.9 success, 0.2s mean, 0.35s p95", m)
	}
	if idle, found := o.Inbound["idle"]; !found || idle.LatencyP95 != 0 || idle.SuccessShare != -1 {
		t.Errorf("idle inbound %+v (found %v); want kept with p95 and success unknown", idle, found)
	}
	for _, name := range []string{"gone", "skewed"} {
		if _, found := o.Inbound[name]; found {
			t.Errorf("%s kept; want dropped", name)
		}
	}
	for _, want := range []string{"stale (no sample for more than 15s) for gone", "ahead of this tick (check the source's clock) for skewed"} {
		if !strings.Contains(o.Error, want) {
			t.Errorf("error %q; want it to say %q", o.Error, want)
		}
	}
	var got []string
	for _, e := range o.Edges {
		got = append(got, fmt.Sprintf("%s→%s ext=%v %.0f", e.From, e.To, e.External, e.Rate))
	}
	want := []string{"main→api.example.com:443 ext=true 2", "main→auth ext=false 4", "main→postgres.elma365-dbs ext=true 3", "main→redis ext=true 2"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("edges\n %s\nwant\n %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
	if !o.Time.Equal(fresh) {
		t.Errorf("time %s, want the oldest kept sample %s", o.Time, fresh)
	}

	// Everything stale: the observation is stale, not an empty graph.
	p.set(qs.Inbound, ok(meshSeries(now, part(partRequests, "5", "deployment", "gone"), part(partSampleTime, unixText(old), "deployment", "gone"))))
	p.set(qs.Outbound, ok(meshSeries(now)))
	if o := c.CollectMesh(context.Background(), cfg, now); o.Status != policy.StatusStale || !strings.Contains(o.Error, "gone") {
		t.Errorf("all stale: %s %q; want stale naming gone", o.Status, o.Error)
	}
	// A rate that is not a number with traffic behind it is invalid.
	p.set(qs.Inbound, ok(meshSeries(now, part(partRequests, "NaN", "deployment", "main"))))
	if o := c.CollectMesh(context.Background(), cfg, now); o.Status != policy.StatusInvalid || !strings.Contains(o.Error, "main (requests is NaN)") {
		t.Errorf("NaN rate: %s %q; want invalid naming main", o.Status, o.Error)
	}
	// A rejected query fails the observation without opening the breaker.
	p.set(qs.Inbound, cannedAnswer{status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error"}`})
	for range 4 {
		if o := c.CollectMesh(context.Background(), cfg, now); o.Status != policy.StatusFailed || !strings.Contains(o.Error, "mesh inbound") {
			t.Fatalf("bad query: %s %q; want failed naming the inbound query", o.Status, o.Error)
		}
	}
	if s := c.promGuard.state().String(); s != "closed" {
		t.Errorf("breaker %s after rejected queries; want closed", s)
	}
}

// Verifies the collector without Prometheus, or with a configuration that
// names no mesh, reports why instead of an empty graph.
func TestMeshWithoutSource(t *testing.T) {
	cfg := parseConfig(t, meshYAML)
	c, _ := newCollector(t, Options{})
	if o := c.CollectMesh(context.Background(), cfg, anyTime); o.Status != policy.StatusMissing || !strings.Contains(o.Error, "no URL configured") {
		t.Errorf("no prometheus: %s %q", o.Status, o.Error)
	}
	if o := c.CollectMesh(context.Background(), nil, anyTime); o.Status != policy.StatusMissing {
		t.Errorf("no config: %s %q", o.Status, o.Error)
	}
}

// Verifies the two questions keep Linkerd's names, the direction, the
// namespace and the selector, and stay two whatever the services.
func TestLinkerdQueries(t *testing.T) {
	qs := LinkerdQueries(parseConfig(t, meshYAML).Mesh)
	for _, want := range []string{
		`rate(request_total{direction="inbound",namespace="elma365",job="linkerd-proxy"}[10s])`,
		`sum by (deployment, classification) (rate(response_total{direction="inbound"`,
		`histogram_quantile(0.95, sum by (deployment, le) (rate(response_latency_ms_bucket{direction="inbound"`,
		`rate(response_latency_ms_sum{direction="inbound"`,
	} {
		if !strings.Contains(qs.Inbound, want) {
			t.Errorf("inbound query lacks %s:\n%s", want, qs.Inbound)
		}
	}
	if want := `sum by (deployment, dst_namespace, dst_deployment, dst_service, authority) (rate(request_total{direction="outbound",namespace="elma365",job="linkerd-proxy"}[10s]))`; !strings.Contains(qs.Outbound, want) {
		t.Errorf("outbound query lacks %s:\n%s", want, qs.Outbound)
	}
	if strings.Contains(qs.Outbound, "histogram_quantile") {
		t.Errorf("outbound query computes a quantile nobody reads")
	}
}
