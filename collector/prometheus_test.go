package collector

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elmascale/elmascale/policy"
)

const unitYAML = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: test
metrics:
  latency:
    prometheus: {query: q_latency}
  inflight:
    prometheus: {query: q_inflight, keyLabel: app}
services:
  auth:
    signals:
      - name: latency
        latency: {metric: latency, quantile: 0.95, slo: 300ms}
      - name: in-flight
        perReplica: {metric: inflight, targetPerReplica: 100}
  main:
    signals:
      - name: latency
        latency: {metric: latency, quantile: 0.95, slo: 300ms}
`

type wantObs struct {
	status policy.ObservationStatus
	value  float64
	// errHas must appear in Observation.Error.
	errHas string
}

// Verifies how each shape of Prometheus answer becomes an observation: a
// missing key is missing (never 0), NaN and infinities are invalid, two
// series for one key are invalid, and failures name the source.
func TestPrometheusAnswers(t *testing.T) {
	inflightOK := ok(vector("app", anyTime, [2]string{"auth", "40"}))
	tests := []struct {
		name    string
		latency cannedAnswer
		want    map[string]wantObs // service/signal
	}{{
		name:    "series per service",
		latency: ok(vector("service", anyTime, [2]string{"auth", "0.25"}, [2]string{"main", "1.5"}, [2]string{"other", "9"})),
		want: map[string]wantObs{
			"auth/latency":   {status: policy.StatusOK, value: 0.25},
			"main/latency":   {status: policy.StatusOK, value: 1.5},
			"auth/in-flight": {status: policy.StatusOK, value: 40},
		},
	}, {
		name:    "empty result",
		latency: ok(vector("service", anyTime)),
		want: map[string]wantObs{
			"auth/latency":   {status: policy.StatusMissing, errHas: `metric latency has no series with service="auth"`},
			"main/latency":   {status: policy.StatusMissing},
			"auth/in-flight": {status: policy.StatusOK, value: 40},
		},
	}, {
		name:    "infinities and NaN",
		latency: ok(vector("service", anyTime, [2]string{"auth", "+Inf"}, [2]string{"main", "NaN"})),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusInvalid, errHas: "+Inf"},
			"main/latency": {status: policy.StatusInvalid, errHas: "NaN"},
		},
	}, {
		name:    "negative infinity",
		latency: ok(vector("service", anyTime, [2]string{"auth", "-Inf"})),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusInvalid, errHas: "-Inf"},
			"main/latency": {status: policy.StatusMissing},
		},
	}, {
		name:    "two series for one key",
		latency: ok(vector("service", anyTime, [2]string{"auth", "0.1"}, [2]string{"auth", "0.2"})),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusInvalid, errHas: "must aggregate by (service)"},
		},
	}, {
		name: "native histogram",
		latency: ok(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"service":"auth"},` +
			`"histogram":[1700000000,{"count":"10","sum":"3","buckets":[[0,"0.1","0.2","10"]]}]}]}}`),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusInvalid, errHas: "native histogram"},
		},
	}, {
		name:    "series without the key label are ignored",
		latency: ok(vector("pod", anyTime, [2]string{"auth-1", "0.1"})),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusMissing},
		},
	}, {
		name:    "server error",
		latency: cannedAnswer{status: 500, body: "internal error"},
		want: map[string]wantObs{
			"auth/latency":   {status: policy.StatusFailed, errHas: "prometheus: query latency: server error: 500"},
			"auth/in-flight": {status: policy.StatusOK, value: 40},
		},
	}, {
		name:    "bad PromQL",
		latency: cannedAnswer{status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`},
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusFailed, errHas: "parse error at char 3"},
		},
	}, {
		name:    "garbage body",
		latency: ok(`<html>proxy login</html>`),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusFailed, errHas: "prometheus: query latency"},
		},
	}, {
		name:    "scalar instead of vector",
		latency: ok(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`),
		want: map[string]wantObs{
			"auth/latency": {status: policy.StatusFailed, errHas: "returned scalar, want an instant vector aggregated by (service)"},
		},
	}}
	cfg := parseConfig(t, unitYAML)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newCannedProm(t, map[string]cannedAnswer{"q_latency": tc.latency, "q_inflight": inflightOK})
			c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL})
			sigs := collect(t, c, cfg, anyTime)
			for key, want := range tc.want {
				svc, sig, _ := strings.Cut(key, "/")
				got, found := sigs[svc][sig]
				if !found {
					t.Fatalf("%s: no observation", key)
				}
				if got.Status != want.status {
					t.Errorf("%s: status %q (%s), want %q", key, got.Status, got.Error, want.status)
				}
				if want.status == policy.StatusOK {
					if got.Value != want.value {
						t.Errorf("%s: value %v, want %v", key, got.Value, want.value)
					}
					if !got.Time.Equal(anyTime) {
						t.Errorf("%s: time %v, want the sample's %v", key, got.Time, anyTime)
					}
				} else if got.Value != 0 && !math.IsNaN(got.Value) {
					t.Errorf("%s: unusable observation carries value %v", key, got.Value)
				}
				if !strings.Contains(got.Error, want.errHas) {
					t.Errorf("%s: error %q, want it to contain %q", key, got.Error, want.errHas)
				}
			}
			if n := p.queries.Load(); n != 2 {
				t.Errorf("sent %d queries, want one per metric definition (2)", n)
			}
		})
	}
}

// Verifies that a query error the server reports (bad PromQL) does not
// count against the breaker, while a server error does.
func TestPrometheusQueryErrorsDoNotTripBreaker(t *testing.T) {
	cfg := parseConfig(t, unitYAML)
	p := newCannedProm(t, map[string]cannedAnswer{
		"q_latency":  {status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error"}`},
		"q_inflight": ok(vector("app", anyTime, [2]string{"auth", "1"})),
	})
	c, reg := newCollector(t, Options{PrometheusURL: p.srv.URL, Breaker: BreakerSettings{FailureThreshold: 2}})
	for i := 0; i < 4; i++ {
		collect(t, c, cfg, anyTime)
	}
	if st := c.promGuard.state().String(); st != "closed" {
		t.Fatalf("breaker %s after bad queries, want closed", st)
	}
	if n := p.queries.Load(); n != 8 {
		t.Errorf("sent %d queries over 4 ticks, want 8", n)
	}
	if v := counterValue(t, c.m.errors.WithLabelValues(SourcePrometheus, ReasonQuery)); v != 4 {
		t.Errorf("errors_total{reason=query} = %v, want 4", v)
	}
	if v := counterValue(t, c.m.up.WithLabelValues(SourcePrometheus)); v != 1 {
		t.Errorf("source_up = %v, want 1", v)
	}
	_ = reg
}

// Verifies that warnings in an answer are logged with the metric's name and
// do not spoil the value.
func TestPrometheusWarningsAreLogged(t *testing.T) {
	cfg := parseConfig(t, unitYAML)
	body := strings.Replace(vector("service", anyTime, [2]string{"auth", "0.3"}), `{"status":"success",`,
		`{"status":"success","warnings":["PromQL info: metric might not be a counter"],`, 1)
	p := newCannedProm(t, map[string]cannedAnswer{"q_latency": ok(body), "q_inflight": ok(vector("app", anyTime))})
	core, logs := observer.New(zapcore.WarnLevel)
	c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL, Logger: zap.New(core)})
	sigs := collect(t, c, cfg, anyTime)
	if got := sigs["auth"]["latency"]; got.Status != policy.StatusOK || got.Value != 0.3 {
		t.Fatalf("latency %+v, want ok 0.3", got)
	}
	entries := logs.FilterMessage("prometheus query returned warnings").All()
	if len(entries) != 1 {
		t.Fatalf("logged %d warning entries, want 1: %v", len(entries), logs.All())
	}
	ctx := entries[0].ContextMap()
	if ctx["metric"] != "latency" || !strings.Contains(toString(ctx["warnings"]), "might not be a counter") {
		t.Errorf("warning entry fields %v", ctx)
	}
}

func toString(v any) string {
	if ss, ok := v.([]any); ok {
		var parts []string
		for _, s := range ss {
			parts = append(parts, toString(s))
		}
		return strings.Join(parts, ";")
	}
	if s, ok := v.(string); ok {
		return s
	}
	if ss, ok := v.([]string); ok {
		return strings.Join(ss, ";")
	}
	return ""
}

// Verifies that a query hanging past the per-query timeout fails within
// that timeout and says so.
func TestPrometheusQueryTimeout(t *testing.T) {
	cfg := parseConfig(t, unitYAML)
	p := newCannedProm(t, map[string]cannedAnswer{
		"q_latency":  {status: 200, body: vector("service", anyTime), delay: 10 * time.Second},
		"q_inflight": ok(vector("app", anyTime, [2]string{"auth", "3"})),
	})
	c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL, QueryTimeout: 200 * time.Millisecond})
	start := time.Now()
	sigs := collect(t, c, cfg, anyTime)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("collection took %s with a 200ms query timeout", d)
	}
	got := sigs["auth"]["latency"]
	if got.Status != policy.StatusFailed || !strings.Contains(got.Error, "prometheus: query latency: no answer within 200ms") {
		t.Errorf("latency %+v, want failed with a timeout naming prometheus", got)
	}
	if got := sigs["auth"]["in-flight"]; got.Status != policy.StatusOK {
		t.Errorf("in-flight %+v: the other query should still succeed", got)
	}
	if v := counterValue(t, c.m.errors.WithLabelValues(SourcePrometheus, ReasonTimeout)); v != 1 {
		t.Errorf("errors_total{reason=timeout} = %v, want 1", v)
	}
}
