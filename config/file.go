package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// The YAML shape of a configuration file. Field docs are the reference the
// README's config section follows; units are in the names or stated.

// File is a whole configuration file.
type File struct {
	// APIVersion must be elmascale.io/v1alpha1.
	APIVersion string `yaml:"apiVersion"`
	// Kind must be Config.
	Kind string `yaml:"kind"`
	// Platform "elma365" pins scheduler, notifier and messengers at one
	// replica and rejects any attempt to scale them. Empty means generic.
	Platform string `yaml:"platform"`
	// Edition for ELMA365: "enterprise" (default minReplicas 2) or
	// "standard" (default minReplicas 1).
	Edition string `yaml:"edition"`
	// Namespace of the scale targets.
	Namespace string `yaml:"namespace"`
	// Interval between control loop ticks (default 15s).
	Interval Duration `yaml:"interval"`
	// StaleAfter: an observation older than this is treated as missing
	// (default 3 × interval).
	StaleAfter Duration `yaml:"staleAfter"`
	// AttributionMemory: a bottleneck keeps explaining its callers' latency
	// this long after its own signals recover (default 2m; 0s turns it off).
	AttributionMemory *Duration `yaml:"attributionMemory"`
	// Budget caps what all managed services may use together.
	Budget BudgetFile `yaml:"budget"`
	// Defaults apply to every service that does not set its own.
	Defaults DefaultsFile `yaml:"defaults"`
	// Metrics are named metric definitions; each is one query per tick,
	// aggregated by a label, whatever the number of services using it.
	Metrics map[string]MetricFile `yaml:"metrics"`
	// Services by name.
	Services map[string]ServiceFile `yaml:"services"`
	// Burst sets the burst path's defaults (BurstFile).
	Burst *BurstFile `yaml:"burst"`
	// Mesh reads the service mesh's proxy metrics: the call graph and every
	// service's own latency, measured (MeshFile).
	Mesh *MeshFile `yaml:"mesh"`
}

// MeshFile is the service mesh source. Exactly one provider is set.
type MeshFile struct {
	// Linkerd reads Linkerd's proxy metrics through the configured
	// Prometheus (usually Linkerd-viz's).
	Linkerd *LinkerdFile `yaml:"linkerd"`
	// MinEdgeRate: calls per second below which an observed edge is not
	// part of the call graph (default 0.05).
	MinEdgeRate *float64 `yaml:"minEdgeRate"`
}

// LinkerdFile is where Linkerd's series are and how they are read.
type LinkerdFile struct {
	// Namespace of the meshed workloads, matched against the series'
	// namespace and dst_namespace labels (default: the config's namespace).
	Namespace string `yaml:"namespace"`
	// Window of the rates (default 1m); at least twice the scrape interval.
	Window Duration `yaml:"window"`
	// Selector is extra PromQL label matchers added to every series
	// selector, e.g. `job="linkerd-proxy"`.
	Selector string `yaml:"selector"`
}

// BudgetFile is the cluster budget.
type BudgetFile struct {
	// MaxTotalReplicas over all managed services; 0 means unlimited.
	MaxTotalReplicas int32 `yaml:"maxTotalReplicas"`
}

// DefaultsFile holds per-service defaults.
type DefaultsFile struct {
	MinReplicas *int32        `yaml:"minReplicas"`
	MaxReplicas *int32        `yaml:"maxReplicas"`
	Behavior    *BehaviorFile `yaml:"behavior"`
}

// MetricFile defines one metric source.
type MetricFile struct {
	Prometheus *PrometheusMetricFile `yaml:"prometheus"`
}

// PrometheusMetricFile is an instant PromQL query returning a vector with
// one series per key (service, queue, ...).
type PrometheusMetricFile struct {
	// Query must aggregate by KeyLabel, e.g. `sum by (service) (...)`.
	Query string `yaml:"query"`
	// KeyLabel is the label naming the series' key (default "service").
	KeyLabel string `yaml:"keyLabel"`
}

// ServiceFile is one service.
type ServiceFile struct {
	// Target is the scaled workload (default Deployment named as the service).
	Target *TargetFile `yaml:"target"`
	// MinReplicas and MaxReplicas bound its replicas.
	MinReplicas *int32 `yaml:"minReplicas"`
	MaxReplicas *int32 `yaml:"maxReplicas"`
	// Pinned holds the service at exactly one replica.
	Pinned bool `yaml:"pinned"`
	// DependsOn: services this one calls synchronously.
	DependsOn []string `yaml:"dependsOn"`
	// FallbackReplicas: when every signal is missing, raise to this count (never lowers).
	FallbackReplicas int32 `yaml:"fallbackReplicas"`
	// Behavior overrides the default behavior, direction by direction.
	Behavior *BehaviorFile `yaml:"behavior"`
	Signals  []SignalFile  `yaml:"signals"`
	// Burst overrides the burst path's defaults for this service.
	Burst *BurstFile `yaml:"burst"`
	// AllowDataStore lets the entry target a workload named like a data
	// store (postgres*, mongo*, redis*, minio*, rabbitmq*), which is
	// otherwise refused: elmascale does not scale data stores.
	AllowDataStore bool `yaml:"allowDataStore"`
}

// TargetFile names a workload.
type TargetFile struct {
	// Kind is Deployment (default) or StatefulSet.
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
}

// SignalFile is one signal; exactly one kind field is set.
type SignalFile struct {
	Name string `yaml:"name"`
	// Tolerance overrides the behavior tolerance for this signal.
	Tolerance *float64 `yaml:"tolerance"`
	// Symptom: this signal's breach can be caused by a saturated dependency
	// (in-flight requests at a caller), so it is attributed like latency.
	// Latency signals are always symptoms.
	Symptom     bool             `yaml:"symptom"`
	Utilization *UtilizationFile `yaml:"utilization"`
	Queue       *QueueFile       `yaml:"queue"`
	Latency     *LatencyFile     `yaml:"latency"`
	PerReplica  *PerReplicaFile  `yaml:"perReplica"`
	Object      *ObjectFile      `yaml:"object"`
	Pods        *PodsFile        `yaml:"pods"`
}

// UtilizationFile: CPU or memory from metrics.k8s.io against pod requests.
type UtilizationFile struct {
	// Resource: cpu or memory.
	Resource string `yaml:"resource"`
	// TargetPercent of requests, 1..1000.
	TargetPercent int32 `yaml:"targetPercent"`
}

// QueueFile: a work queue.
type QueueFile struct {
	// RabbitMQ reads the queues straight from the management API.
	RabbitMQ *RabbitMQQueueFile `yaml:"rabbitmq"`
	// Metric-based alternative: names of metric definitions, keyed by Key.
	Backlog        string `yaml:"backlogMetric"`
	ArrivalRate    string `yaml:"arrivalRateMetric"`
	CompletionRate string `yaml:"completionRateMetric"`
	// Key selects the series of those metrics (default: the service name).
	Key string `yaml:"key"`
	// DrainTime: the backlog should be gone within this time.
	DrainTime Duration `yaml:"drainTime"`
	// TargetUtilization of measured per-replica throughput, (0,1], default 0.8.
	TargetUtilization float64 `yaml:"targetUtilization"`
	// ThroughputPerReplica: messages/s one replica completes, used until measured.
	ThroughputPerReplica float64 `yaml:"throughputPerReplica"`
}

// RabbitMQQueueFile lists queues whose backlogs add up.
type RabbitMQQueueFile struct {
	VHost  string   `yaml:"vhost"`
	Queues []string `yaml:"queues"`
}

// LatencyFile: a latency quantile metric (seconds) against an SLO.
type LatencyFile struct {
	Metric string `yaml:"metric"`
	Key    string `yaml:"key"`
	// Quantile the metric stands for, (0, 1). The metric's query decides
	// it when it computes histogram_quantile(φ, …); then this may be left
	// out and, when given, must agree. It is needed only for a query that
	// does not show it, such as a recorded series.
	Quantile float64  `yaml:"quantile"`
	SLO      Duration `yaml:"slo"`
}

// PerReplicaFile: a metric total divided over replicas.
type PerReplicaFile struct {
	Metric           string  `yaml:"metric"`
	Key              string  `yaml:"key"`
	TargetPerReplica float64 `yaml:"targetPerReplica"`
}

// ObjectFile: a single value against a target.
type ObjectFile struct {
	Metric string  `yaml:"metric"`
	Key    string  `yaml:"key"`
	Target float64 `yaml:"target"`
	// RefuseAgainstLoad keeps the current count when the proposal points
	// against the load (HPA has no such refusal; off by default).
	RefuseAgainstLoad bool `yaml:"refuseAgainstLoad"`
}

// PodsFile: a metric sampled per pod, averaged against a per-pod target
// (HPA's Pods metric). The metric's query must give one series per pod,
// keyed by a pod-name label (its keyLabel, e.g. pod).
type PodsFile struct {
	Metric       string  `yaml:"metric"`
	TargetPerPod float64 `yaml:"targetPerPod"`
}

// BehaviorFile has the shape of autoscaling/v2 HorizontalPodAutoscalerBehavior
// plus a tolerance.
type BehaviorFile struct {
	// Legacy reproduces an HPA without spec.behavior: a scale-up capped at
	// max(2×current, 4) per tick, no scale-up stabilization, scaleDown's
	// stabilizationWindow (default 5m) as the downscale window.
	Legacy    bool              `yaml:"legacy"`
	Tolerance *float64          `yaml:"tolerance"`
	ScaleUp   *ScalingRulesFile `yaml:"scaleUp"`
	ScaleDown *ScalingRulesFile `yaml:"scaleDown"`
}

// ScalingRulesFile is one direction's rules.
type ScalingRulesFile struct {
	// Tolerance for this direction only (autoscaling/v2 behavior.scaleUp /
	// scaleDown.tolerance); unset: the behavior's tolerance.
	Tolerance           *float64         `yaml:"tolerance"`
	StabilizationWindow *Duration        `yaml:"stabilizationWindow"`
	SelectPolicy        string           `yaml:"selectPolicy"`
	Policies            []RatePolicyFile `yaml:"policies"`
}

// RatePolicyFile is one rate policy.
type RatePolicyFile struct {
	// Type: Pods or Percent.
	Type   string   `yaml:"type"`
	Value  int32    `yaml:"value"`
	Period Duration `yaml:"period"`
}

// Duration is a time.Duration written as "30s", "5m", "500ms".
type Duration time.Duration

// UnmarshalYAML parses Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like 30s", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
