package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// faultYAML scales down at once on low load, so a decision that holds is
// visibly the failure's doing and not a stabilization window's.
const faultYAML = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: test
defaults:
  minReplicas: 1
  maxReplicas: 10
  behavior:
    scaleDown:
      stabilizationWindow: 0s
      policies: [{type: Percent, value: 100, period: 15s}]
metrics:
  latency:
    prometheus: {query: q_latency}
  inflight:
    prometheus: {query: q_inflight}
services:
  auth:
    signals:
      - name: latency
        latency: {metric: latency, quantile: 0.95, slo: 300ms}
      - name: in-flight
        perReplica: {metric: inflight, targetPerReplica: 100}
`

// Verifies, for each way an HTTP source can break, that the observations
// fail naming the source, the breaker opens after the threshold and then
// stops sending queries, a decision over the snapshot holds the service
// instead of scaling it down, and the source recovers once healthy.
func TestPrometheusFaultsOpenBreakerAndHold(t *testing.T) {
	healthy := map[string]cannedAnswer{
		"q_latency":  ok(vector("service", anyTime, [2]string{"auth", "0.01"})),
		"q_inflight": ok(vector("service", anyTime, [2]string{"auth", "40"})),
	}
	faults := []struct {
		name   string
		answer cannedAnswer
		errHas string
		reason string
	}{
		{"500", cannedAnswer{status: 500, body: "upstream exploded"}, "server error: 500", ReasonHTTPStatus},
		{"hang past the timeout", cannedAnswer{status: 200, body: "{}", delay: 5 * time.Second}, "no answer within 200ms", ReasonTimeout},
		{"garbage", ok("\x00\x01 not json"), "cannot decode answer", ReasonBadResponse},
	}
	cfg := parseConfig(t, faultYAML)
	const current = 5
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			answers := map[string]cannedAnswer{}
			for q, a := range healthy {
				answers[q] = a
			}
			p := newCannedProm(t, answers)
			c, _ := newCollector(t, Options{
				PrometheusURL: p.srv.URL,
				QueryTimeout:  200 * time.Millisecond,
				Breaker:       BreakerSettings{FailureThreshold: 2, OpenFor: 500 * time.Millisecond},
			})

			// Healthy: low load scales auth down.
			sigs := collect(t, c, cfg, anyTime)
			plan, _ := policy.Decide(cfg.Policy, snapshotOf(cfg, sigs, current, anyTime), policy.State{}, anyTime)
			if d, _ := plan.Decision("auth"); d.Desired >= current {
				t.Fatalf("healthy low load: desired %d (%s); the test needs a scale-down to contrast with", d.Desired, d.Reason)
			}

			p.setAll(f.answer)
			for tick := 1; tick <= 2; tick++ {
				sigs = collect(t, c, cfg, anyTime)
				for _, name := range []string{"latency", "in-flight"} {
					o := sigs["auth"][name]
					if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "prometheus") || !strings.Contains(o.Error, f.errHas) {
						t.Fatalf("failing tick %d, %s: %+v; want failed naming prometheus and %q", tick, name, o, f.errHas)
					}
				}
				assertHeld(t, cfg, sigs, current, anyTime, "auth")
			}
			if st := c.promGuard.state().String(); st != "open" {
				t.Fatalf("breaker %s after 2 failed ticks, want open", st)
			}
			sent := p.queries.Load()
			sigs = collect(t, c, cfg, anyTime)
			if p.queries.Load() != sent {
				t.Errorf("open breaker still sent queries")
			}
			o := sigs["auth"]["latency"]
			if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "prometheus: circuit breaker open") || !strings.Contains(o.Error, f.errHas) {
				t.Errorf("open breaker: %+v; want failed, naming the breaker and the last error", o)
			}
			assertHeld(t, cfg, sigs, current, anyTime, "auth")
			if v := counterValue(t, c.m.up.WithLabelValues(SourcePrometheus)); v != 0 {
				t.Errorf("source_up %v while failing", v)
			}
			if v := counterValue(t, c.m.breaker.WithLabelValues(SourcePrometheus, "open")); v != 1 {
				t.Errorf("breaker_state{state=open} = %v, want 1", v)
			}
			if v := counterValue(t, c.m.errors.WithLabelValues(SourcePrometheus, f.reason)); v < 2 {
				t.Errorf("errors_total{reason=%s} = %v, want >= 2", f.reason, v)
			}
			if v := counterValue(t, c.m.errors.WithLabelValues(SourcePrometheus, ReasonBreakerOpen)); v != 1 {
				t.Errorf("errors_total{reason=breaker_open} = %v, want 1", v)
			}

			// Healthy again: after OpenFor one trial tick closes the breaker.
			for q, a := range healthy {
				p.set(q, a)
			}
			time.Sleep(600 * time.Millisecond)
			sigs = collect(t, c, cfg, anyTime)
			if o := sigs["auth"]["latency"]; o.Status != policy.StatusOK || o.Value != 0.01 {
				t.Fatalf("after recovery: %+v, want ok 0.01", o)
			}
			if st := c.promGuard.state().String(); st != "closed" {
				t.Errorf("breaker %s after a good trial, want closed", st)
			}
			if v := counterValue(t, c.m.up.WithLabelValues(SourcePrometheus)); v != 1 {
				t.Errorf("source_up %v after recovery", v)
			}
		})
	}
}
