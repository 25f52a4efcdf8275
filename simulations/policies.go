package simulations

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// The policies a scenario can be run with.
const (
	PolicyElmascale  = "elmascale"
	PolicyHPA        = "hpa"
	PolicyKEDA       = "keda"
	PolicyStatic     = "static"
	PolicyLatencyHPA = "latency-hpa"
	PolicyOracle     = "oracle"
	// PolicyPreset is the ELMA365 preset exactly as shipped, for comparison
	// with the scenario's tuned elmascale configuration.
	PolicyPreset = "preset"
	// PolicyLateReference is the reference acting as late as a policy that
	// reacts must (Oracle.Late). It is not among PolicyNames: it is asked
	// for by name, to read how much of the reference's lead is foresight.
	PolicyLateReference = "late-reference"
)

// PolicyNames lists every policy in report order.
func PolicyNames() []string {
	return []string{PolicyElmascale, PolicyPreset, PolicyHPA, PolicyKEDA, PolicyLatencyHPA, PolicyStatic, PolicyOracle}
}

// ExtraPolicyNames lists the policies run only when asked for by name.
func ExtraPolicyNames() []string { return []string{PolicyLateReference} }

// Policy is how replicas are decided in a run: a configuration run through
// daemon.Loop and policy.Decide, or the offline oracle.
type Policy struct {
	Name string
	// Config and YAML for every policy but the oracle.
	Config *config.Config
	YAML   []byte
	// Oracle is set for the oracle only.
	Oracle *Oracle
}

// BuildPolicy returns the named policy for a scenario. The baselines are
// configurations generated the way their users would write them, over the
// same services, bounds and metrics as the scenario's elmascale config,
// and run through the same loop and policy code (which follows the HPA
// controller's replica calculator and behavior: docs/hpa-conformance.md).
//
//   - static: every service at the ELMA365 Enterprise default of two
//     replicas (single-instance services at one), no signals.
//   - hpa: what a user of the HorizontalPodAutoscaler writes: one
//     autoscaling/v2 HPA per scalable service on CPU utilization against
//     HPACPUTargetPercent of requests, default behavior (no scale-up
//     stabilization, 5 min scale-down stabilization, 100%/4 pods per 15 s
//     up), synced every HPASyncPeriod (the controller's 15 s). Its CPU
//     comes from the simulated metrics-server: each pod's usage over the
//     last resolution window, first sampled a window after the pod
//     starts, with the controller's CPU initialization period and
//     readiness delay. Modelled: the sync period, metrics-server's
//     window and lag, tolerance, pods not yet ready or without metrics.
//     Left out: the call graph (a breach anywhere is seen only as CPU
//     where it happens), queues, memory.
//   - keda: what a KEDA user writes: a ScaledObject per scalable service
//     whose HPA the KEDA operator creates. Queue consumers get a RabbitMQ
//     trigger in QueueLength mode (messages ready plus unacknowledged, an
//     AverageValue of KEDAQueueLengthPerReplica per replica) and a CPU
//     trigger at HPACPUTargetPercent, as KEDA's users give workers; other
//     services the CPU trigger alone. The HPA beneath asks KEDA's metrics
//     adapter every HPASyncPeriod (15 s), and the adapter reads the queue
//     on each request, so the whole configuration ticks at 15 s; KEDA's
//     pollingInterval (KEDAPollingInterval) only governs activation from
//     zero replicas, which no scenario uses (every managed service has
//     minReplicas >= 1), so it is recorded but changes nothing. Left out:
//     scaling to and from zero, the fallback replicas on a failing
//     scaler, the adapter's metric cache (useCachedMetrics).
//   - latency-hpa: CPU as hpa plus a latency signal on every service that
//     has one in the elmascale config or an SLO in the scenario, with no
//     dependsOn: every service whose latency breaches is scaled, as an HPA
//     on a latency custom metric would.
func BuildPolicy(sc *Scenario, name string, seed uint64) (Policy, error) {
	switch name {
	case PolicyElmascale:
		return Policy{Name: name, Config: sc.Elmascale, YAML: sc.ElmascaleYAML}, nil
	case PolicyPreset:
		cfg, err := config.ELMA365Preset()
		if err != nil {
			return Policy{}, err
		}
		return Policy{Name: name, Config: cfg, YAML: config.ELMA365PresetYAML()}, nil
	case PolicyOracle:
		return Policy{Name: name, Oracle: NewOracle(sc, seed)}, nil
	case PolicyLateReference:
		react := 15 * time.Second
		if sc.Elmascale != nil && sc.Elmascale.Interval > 0 {
			react = sc.Elmascale.Interval
		}
		return Policy{Name: name, Oracle: NewOracle(sc, seed).Late(sc, react)}, nil
	case PolicyStatic, PolicyHPA, PolicyKEDA, PolicyLatencyHPA:
		f := baselineFile(sc, name)
		text, err := yaml.Marshal(f)
		if err != nil {
			return Policy{}, err
		}
		cfg, err := config.Parse(text)
		if err != nil {
			return Policy{}, fmt.Errorf("%s baseline config: %w", name, err)
		}
		return Policy{Name: name, Config: cfg, YAML: text}, nil
	}
	return Policy{}, fmt.Errorf("unknown policy %q (want one of %v or %v)", name, PolicyNames(), ExtraPolicyNames())
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

func i32(v int32) *int32 { return &v }

// baselineFile writes a baseline's configuration file.
func baselineFile(sc *Scenario, name string) *config.File {
	el := sc.Elmascale
	b := sc.Baselines
	f := &config.File{
		APIVersion: config.APIVersion, Kind: config.Kind,
		Platform: config.PlatformELMA365, Edition: "enterprise",
		Namespace: el.Namespace, Interval: dur(b.HPASyncPeriod),
		Metrics:  map[string]config.MetricFile{},
		Services: map[string]config.ServiceFile{},
	}
	if name == PolicyKEDA {
		f.Metrics[KEDAQueueMetric] = config.MetricFile{Prometheus: &config.PrometheusMetricFile{
			Query:    `sum by (queue) (rabbitmq_queue_messages{namespace="` + el.Namespace + `"})`,
			KeyLabel: "queue",
		}}
	}
	latencySLO := map[string]time.Duration{}
	for _, l := range sc.SLO.EndToEnd {
		latencySLO[l.Name] = l.P95
	}
	for _, l := range sc.SLO.Services {
		latencySLO[l.Name] = l.P95
	}
	metricOf := map[string]string{}
	for i, ps := range el.Policy.Services {
		for j, sg := range ps.Signals {
			if sg.Kind == policy.KindLatency {
				latencySLO[ps.Name] = sg.Latency.SLO
				metricOf[ps.Name] = el.Services[i].Signals[j].Metric
			}
		}
	}
	if name == PolicyLatencyHPA {
		for _, m := range el.Metrics {
			if _, used := f.Metrics[m.Name]; !used && m.Prometheus != nil {
				f.Metrics[m.Name] = config.MetricFile{Prometheus: &config.PrometheusMetricFile{Query: m.Prometheus.Query, KeyLabel: m.Prometheus.KeyLabel}}
			}
		}
		if _, ok := f.Metrics["request_latency_p95"]; !ok {
			f.Metrics["request_latency_p95"] = config.MetricFile{Prometheus: &config.PrometheusMetricFile{
				Query:    `histogram_quantile(0.95, sum by (service, le) (rate(elma365_request_duration_seconds_bucket[1m])))`,
				KeyLabel: "service",
			}}
		}
	}
	for _, ps := range el.Policy.Services {
		sf := config.ServiceFile{MinReplicas: i32(ps.MinReplicas), MaxReplicas: i32(ps.MaxReplicas), Pinned: ps.Pinned}
		if ps.Pinned {
			sf.MinReplicas, sf.MaxReplicas = nil, nil
			f.Services[ps.Name] = sf
			continue
		}
		cpu := config.SignalFile{Name: "cpu", Utilization: &config.UtilizationFile{Resource: policy.ResourceCPU, TargetPercent: b.HPACPUTargetPercent}}
		switch name {
		case PolicyStatic:
			sf.MinReplicas, sf.MaxReplicas = i32(2), i32(2)
		case PolicyHPA:
			sf.Signals = []config.SignalFile{cpu}
		case PolicyKEDA:
			var queues []string
			if si := sc.ServiceIndex(ps.Name); si >= 0 {
				queues = sc.Services[si].Consumes
			}
			sf.Signals = []config.SignalFile{cpu}
			for _, q := range queues {
				sf.Signals = append(sf.Signals, config.SignalFile{Name: "rabbitmq-" + q,
					PerReplica: &config.PerReplicaFile{Metric: KEDAQueueMetric, Key: q, TargetPerReplica: b.KEDAQueueLengthPerReplica}})
			}
		case PolicyLatencyHPA:
			sf.Signals = []config.SignalFile{cpu}
			if slo, ok := latencySLO[ps.Name]; ok {
				metric := metricOf[ps.Name]
				if metric == "" {
					metric = "request_latency_p95"
				}
				sf.Signals = append(sf.Signals, config.SignalFile{Name: "latency",
					Latency: &config.LatencyFile{Metric: metric, Quantile: 0.95, SLO: dur(slo)}})
			}
		}
		f.Services[ps.Name] = sf
	}
	if len(f.Metrics) == 0 {
		f.Metrics = nil
	}
	return f
}
