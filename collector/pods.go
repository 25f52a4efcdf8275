package collector

import (
	"fmt"
	"math"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// pods builds a pods signal (HPA's Pods metric): one sample per pod of the
// workload, taken from the metric's series keyed by pod name. A pod with no
// series is passed on without a metric, so the policy fills it in as HPA
// does (the target on a scale-down, 0 on a scale-up); series of pods that
// are not the workload's are ignored.
func (c *Collector) pods(wp *workloadPods, kubeErr error, prom promView, metric string) policy.Observation {
	switch {
	case c.kube == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: "kubernetes: no client configured to list the workload's pods"}
	case kubeErr != nil:
		return failed(kubeErr)
	case wp == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: "kubernetes: no pods collected"}
	case wp.missing != "":
		return policy.Observation{Status: policy.StatusMissing, Error: wp.missing}
	case len(wp.pods) == 0:
		return policy.Observation{Status: policy.StatusMissing, Error: "kubernetes: the workload has no pods"}
	}
	if !prom.configured {
		return policy.Observation{Status: policy.StatusMissing, Error: "prometheus: no URL configured"}
	}
	r := prom.res[metric]
	switch {
	case r == nil && prom.err != nil:
		return failed(prom.err)
	case r == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: fmt.Sprintf("prometheus: metric %s was not queried", metric)}
	case r.err != nil:
		return failed(r.err)
	}
	label := prom.keyLabels[metric]
	obs := policy.Observation{Status: policy.StatusOK, Pods: make([]policy.PodSample, len(wp.pods))}
	withMetric := 0
	for i, p := range wp.pods {
		ps := p.sample
		// The pod listing filled these from metrics.k8s.io; this signal
		// has its own samples.
		ps.HasMetric, ps.Usage, ps.Request, ps.MetricWindow = false, 0, 0, 0
		ps.MetricTime = time.Time{}
		s, ok := r.byKey[ps.Name]
		switch {
		case !ok:
		case s.series > 1:
			return policy.Observation{Status: policy.StatusInvalid, Time: s.time,
				Error: fmt.Sprintf("prometheus: metric %s has %d series with %s=%q: its query must aggregate by (%s)", metric, s.series, label, ps.Name, label)}
		case s.native:
			return policy.Observation{Status: policy.StatusInvalid, Time: s.time,
				Error: fmt.Sprintf("prometheus: metric %s is a native histogram for %s=%q", metric, label, ps.Name)}
		case math.IsNaN(s.value) || math.IsInf(s.value, 0) || s.value < 0:
			return policy.Observation{Status: policy.StatusInvalid, Time: s.time,
				Error: fmt.Sprintf("prometheus: metric %s is %v for %s=%q", metric, s.value, label, ps.Name)}
		default:
			ps.HasMetric, ps.Value, ps.MetricTime = true, s.value, s.time
			withMetric++
			if obs.Time.IsZero() || s.time.Before(obs.Time) {
				obs.Time = s.time
			}
		}
		obs.Pods[i] = ps
	}
	if withMetric == 0 {
		return policy.Observation{Status: policy.StatusMissing,
			Error: fmt.Sprintf("prometheus: metric %s has no series for any pod of the workload (by %s)", metric, label)}
	}
	return obs
}
