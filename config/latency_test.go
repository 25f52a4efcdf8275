package config

import (
	"strings"
	"testing"
)

// Verifies the metric's query decides a latency signal's quantile: it is
// taken from histogram_quantile(φ, …), a quantile field that disagrees is
// refused (it used to make the reason say p99 over a p95 query), and the
// field is needed only when the query does not show one.
func TestLatencyQuantileFollowsTheQuery(t *testing.T) {
	const head = "apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: shop\nmetrics:\n" +
		"  p95: {prometheus: {query: 'histogram_quantile(0.95, sum by (service, le) (rate(x_bucket[1m])))'}}\n" +
		"  recorded: {prometheus: {query: 'service:latency_p90:1m'}}\n" +
		"services:\n  api:\n    signals:\n      - name: latency\n        latency: "
	cases := []struct {
		name   string
		signal string
		want   float64
		errHas string
	}{
		{"taken from the query", "{metric: p95, slo: 300ms}", 0.95, ""},
		{"agreeing field", "{metric: p95, quantile: 0.95, slo: 300ms}", 0.95, ""},
		{"disagreeing field", "{metric: p95, quantile: 0.99, slo: 300ms}", 0,
			`services.api.signals[0].latency.quantile: 0.99, but metric "p95" computes histogram_quantile(0.95, …)`},
		{"recorded series says it", "{metric: recorded, quantile: 0.9, slo: 300ms}", 0.9, ""},
		{"recorded series without it", "{metric: recorded, slo: 300ms}", 0,
			`services.api.signals[0].latency.quantile: metric "recorded"'s query does not show its quantile`},
		{"out of range", "{metric: recorded, quantile: 95, slo: 300ms}", 0, "latency.quantile: must be in (0, 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(head + tc.signal + "\n"))
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) || strings.Count(err.Error(), "\n") != 0 {
					t.Fatalf("err %v, want only %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Policy.Services[0].Signals[0].Latency.Quantile; got != tc.want {
				t.Errorf("quantile %g, want %g", got, tc.want)
			}
		})
	}
	if q, ok := queryQuantile("histogram_quantile(0.5, a) / histogram_quantile(0.99, b)"); ok {
		t.Errorf("two quantiles in one query read as %g", q)
	}
}
