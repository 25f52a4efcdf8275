package record

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/elmascale/elmascale/policy"
)

// Verifies the config's bounds, budget and managed namespace are exported,
// follow a reload (a service that leaves, a namespace that changes), and
// that each service has exactly one decision_info series, the last
// decision's, with bounded labels.
func TestConfigAndDecisionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, false, "v1")
	spec := policy.Spec{Budget: policy.Budget{MaxTotalReplicas: 40}, Services: []policy.ServiceSpec{
		{Name: "worker", MinReplicas: 2, MaxReplicas: 12}, {Name: "notifier", MinReplicas: 1, MaxReplicas: 1, Pinned: true},
	}}
	m.SetConfig("elma365", spec)
	m.Record(tick([]policy.Decision{
		{Service: "worker", Current: 2, Desired: 6, LimitedBy: policy.LimitRate, ScalingLimited: policy.ReasonScaleUpLimit},
		{Service: "notifier", Current: 1, Desired: 1},
	}, nil, nil))
	m.Record(tick([]policy.Decision{
		{Service: "worker", Current: 6, Desired: 5, ScalingLimited: policy.ReasonDesiredWithinRange},
		{Service: "notifier", Current: 1, Desired: 1},
	}, nil, nil))
	spec.Services = spec.Services[:1]
	m.SetConfig("elma", spec)

	want := `
# HELP elmascale_budget_max_total_replicas budget.maxTotalReplicas of the config in force; 0 means no cap.
# TYPE elmascale_budget_max_total_replicas gauge
elmascale_budget_max_total_replicas 40
# HELP elmascale_config_info Always 1; target_namespace is the namespace whose targets the config in force manages.
# TYPE elmascale_config_info gauge
elmascale_config_info{target_namespace="elma"} 1
# HELP elmascale_replicas_max The service's maxReplicas in the config in force (1 for a pinned service).
# TYPE elmascale_replicas_max gauge
elmascale_replicas_max{service="worker"} 12
# HELP elmascale_replicas_min The service's minReplicas in the config in force (1 for a pinned service).
# TYPE elmascale_replicas_min gauge
elmascale_replicas_min{service="worker"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "elmascale_budget_max_total_replicas", "elmascale_config_info", "elmascale_replicas_min", "elmascale_replicas_max"); err != nil {
		t.Error(err)
	}
	wantDecisions := `
# HELP elmascale_decision_info Always 1, one series per service: the last decision. direction: up, down, none. limited_by: none, hold, fallback, stabilization, rate, min, max, pinned, budget. scaling_limited: the HPA condition reason (DesiredWithinRange, ScaleUpLimit, ScaleDownLimit, TooManyReplicas, TooFewReplicas) or none.
# TYPE elmascale_decision_info gauge
elmascale_decision_info{direction="down",limited_by="none",scaling_limited="DesiredWithinRange",service="worker"} 1
elmascale_decision_info{direction="none",limited_by="none",scaling_limited="none",service="notifier"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantDecisions), "elmascale_decision_info"); err != nil {
		t.Error(err)
	}
}
