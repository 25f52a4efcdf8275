package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// The YAML shape of a configuration file. Field docs are the reference the
// README's config section follows; units are in the names or stated.

// File is a whole configuration file.
// +kubebuilder:validation:XValidation:rule="!has(self.platform) || self.platform != 'elma365' || !has(self.services) || self.services.all(n, !((has(self.services[n].target) && has(self.services[n].target.name) ? self.services[n].target.name : n) in ['scheduler', 'notifier', 'messengers']) || ((!has(self.services[n].minReplicas) || self.services[n].minReplicas == 1) && (!has(self.services[n].maxReplicas) || self.services[n].maxReplicas == 1)))",message="ELMA365's scheduler, notifier and messengers run as exactly one instance: their minReplicas and maxReplicas must be 1"
type File struct {
	// APIVersion must be elmascale.io/v1alpha1.
	APIVersion string `yaml:"apiVersion" json:"-"`
	// Kind must be Config.
	Kind string `yaml:"kind" json:"-"`
	// Platform "elma365" pins scheduler, notifier and messengers at one
	// replica and rejects any attempt to scale them. Empty means generic.
	// +kubebuilder:validation:Enum="";elma365
	Platform string `yaml:"platform" json:"platform,omitempty"`
	// Edition for ELMA365: "enterprise" (default minReplicas 2) or
	// "standard" (default minReplicas 1).
	// +kubebuilder:validation:Enum="";enterprise;standard
	Edition string `yaml:"edition" json:"edition,omitempty"`
	// Namespace of the scale targets.
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// Interval between control loop ticks (default 15s).
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="must be at least 1s"
	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	// StaleAfter: an observation older than this is treated as missing
	// (default 3 × interval).
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	StaleAfter Duration `yaml:"staleAfter" json:"staleAfter,omitempty"`
	// AttributionMemory: a bottleneck keeps explaining its callers' latency
	// this long after its own signals recover (default 2m; 0s turns it off).
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="must be at most 1h"
	AttributionMemory *Duration `yaml:"attributionMemory" json:"attributionMemory,omitempty"`
	// Budget caps what all managed services may use together.
	Budget BudgetFile `yaml:"budget" json:"budget,omitempty"`
	// Defaults apply to every service that does not set its own.
	Defaults DefaultsFile `yaml:"defaults" json:"defaults,omitempty"`
	// Metrics are named metric definitions; each is one query per tick,
	// aggregated by a label, whatever the number of services using it.
	// +kubebuilder:validation:MaxProperties=1000
	Metrics map[string]MetricFile `yaml:"metrics" json:"metrics,omitempty"`
	// Services by name. A ScalingPolicy holds at most 2,000, so that its
	// status (every service's decision) fits the API server's object size
	// limit; a file has no such limit.
	// +kubebuilder:validation:MaxProperties=2000
	Services map[string]ServiceFile `yaml:"services" json:"services,omitempty"`
	// Burst sets the burst path's defaults (BurstFile).
	Burst *BurstFile `yaml:"burst" json:"burst,omitempty"`
	// Mesh reads the service mesh's proxy metrics: the call graph and every
	// service's own latency, measured (MeshFile).
	Mesh *MeshFile `yaml:"mesh" json:"mesh,omitempty"`
}

// MeshFile is the service mesh source. Exactly one provider is set.
type MeshFile struct {
	// Linkerd reads Linkerd's proxy metrics through the configured
	// Prometheus (usually Linkerd-viz's).
	Linkerd *LinkerdFile `yaml:"linkerd" json:"linkerd,omitempty"`
	// MinEdgeRate: calls per second below which an observed edge is not
	// part of the call graph (default 0.05).
	MinEdgeRate *float64 `yaml:"minEdgeRate" json:"minEdgeRate,omitempty"`
	// Growth: how far above its baseline a service's own latency must be,
	// relative to the baseline, to count as grown (default 0.5: 150% of
	// the baseline).
	// +kubebuilder:validation:Minimum=0.05
	// +kubebuilder:validation:Maximum=100
	Growth *float64 `yaml:"growth" json:"growth,omitempty"`
	// MinGrowth: the least growth of own latency that counts, however small
	// the baseline (default 20ms).
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	MinGrowth Duration `yaml:"minGrowth" json:"minGrowth,omitempty"`
	// TargetUtilization: the share of a replica's measured throughput
	// planned for when the mesh sizes a service (default 0.8).
	// +kubebuilder:validation:Minimum=0.1
	// +kubebuilder:validation:Maximum=1
	TargetUtilization *float64 `yaml:"targetUtilization" json:"targetUtilization,omitempty"`
	// DrainTime: how soon requests queued at a bottleneck should be worked
	// off on top of keeping up with arrivals (default 10s).
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	DrainTime Duration `yaml:"drainTime" json:"drainTime,omitempty"`
	// MinResponses: the fewest responses within the window before a
	// service's mean latencies are judged (default 50).
	// +kubebuilder:validation:Minimum=1
	MinResponses *float64 `yaml:"minResponses" json:"minResponses,omitempty"`
}

// LinkerdFile is where Linkerd's series are and how they are read.
type LinkerdFile struct {
	// Namespace of the meshed workloads, matched against the series'
	// namespace and dst_namespace labels (default: the config's namespace).
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// Window of the rates (default 1m); at least twice the scrape interval.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	Window Duration `yaml:"window" json:"window,omitempty"`
	// Selector is extra PromQL label matchers added to every series
	// selector, e.g. `job="linkerd-proxy"`.
	Selector string `yaml:"selector" json:"selector,omitempty"`
}

// BudgetFile is the cluster budget.
type BudgetFile struct {
	// MaxTotalReplicas over all managed services; 0 means unlimited.
	// +kubebuilder:validation:Minimum=0
	MaxTotalReplicas int32 `yaml:"maxTotalReplicas" json:"maxTotalReplicas,omitempty"`
}

// DefaultsFile holds per-service defaults.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type DefaultsFile struct {
	// +kubebuilder:validation:Minimum=0
	MinReplicas *int32 `yaml:"minReplicas" json:"minReplicas,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas *int32        `yaml:"maxReplicas" json:"maxReplicas,omitempty"`
	Behavior    *BehaviorFile `yaml:"behavior" json:"behavior,omitempty"`
}

// MetricFile defines one metric source.
type MetricFile struct {
	Prometheus *PrometheusMetricFile `yaml:"prometheus" json:"prometheus,omitempty"`
}

// PrometheusMetricFile is an instant PromQL query returning a vector with
// one series per key (service, queue, ...).
type PrometheusMetricFile struct {
	// Query must aggregate by KeyLabel, e.g. `sum by (service) (...)`.
	Query string `yaml:"query" json:"query,omitempty"`
	// KeyLabel is the label naming the series' key (default "service").
	KeyLabel string `yaml:"keyLabel" json:"keyLabel,omitempty"`
}

// ServiceFile is one service.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas",fieldPath=".minReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.pinned) || !self.pinned || ((!has(self.minReplicas) || self.minReplicas == 1) && (!has(self.maxReplicas) || self.maxReplicas == 1) && (!has(self.fallbackReplicas) || self.fallbackReplicas <= 1))",message="a pinned service runs exactly one replica: minReplicas and maxReplicas must be 1, fallbackReplicas 0 or 1",fieldPath=".pinned"
type ServiceFile struct {
	// Target is the scaled workload (default Deployment named as the service).
	Target *TargetFile `yaml:"target" json:"target,omitempty"`
	// MinReplicas and MaxReplicas bound its replicas.
	// +kubebuilder:validation:Minimum=0
	MinReplicas *int32 `yaml:"minReplicas" json:"minReplicas,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas *int32 `yaml:"maxReplicas" json:"maxReplicas,omitempty"`
	// Pinned holds the service at exactly one replica.
	Pinned bool `yaml:"pinned" json:"pinned,omitempty"`
	// DependsOn: services this one calls synchronously.
	DependsOn []string `yaml:"dependsOn" json:"dependsOn,omitempty"`
	// FallbackReplicas: when every signal is missing, raise to this count (never lowers).
	// +kubebuilder:validation:Minimum=0
	FallbackReplicas int32 `yaml:"fallbackReplicas" json:"fallbackReplicas,omitempty"`
	// Behavior overrides the default behavior, direction by direction.
	Behavior *BehaviorFile `yaml:"behavior" json:"behavior,omitempty"`
	Signals  []SignalFile  `yaml:"signals" json:"signals,omitempty"`
	// Burst overrides the burst path's defaults for this service.
	Burst *BurstFile `yaml:"burst" json:"burst,omitempty"`
	// AllowDataStore lets the entry target a workload named like a data
	// store (postgres*, mongo*, redis*, minio*, rabbitmq*), which is
	// otherwise refused: elmascale does not scale data stores.
	AllowDataStore bool `yaml:"allowDataStore" json:"allowDataStore,omitempty"`
	// Pools makes the entry a template: one service per worker pool whose
	// RabbitMQ queue fits its pattern (PoolsFile).
	Pools *PoolsFile `yaml:"pools" json:"pools,omitempty"`
}

// TargetFile names a workload.
type TargetFile struct {
	// Kind is Deployment (default) or StatefulSet.
	// +kubebuilder:validation:Enum=Deployment;StatefulSet
	Kind string `yaml:"kind" json:"kind,omitempty"`
	Name string `yaml:"name" json:"name,omitempty"`
}

// SignalFile is one signal; exactly one kind field is set.
type SignalFile struct {
	Name string `yaml:"name" json:"name,omitempty"`
	// Tolerance overrides the behavior tolerance for this signal.
	Tolerance *float64 `yaml:"tolerance" json:"tolerance,omitempty"`
	// Symptom: this signal's breach can be caused by a saturated dependency
	// (in-flight requests at a caller), so it is attributed like latency.
	// Latency signals are always symptoms.
	Symptom     bool             `yaml:"symptom" json:"symptom,omitempty"`
	Utilization *UtilizationFile `yaml:"utilization" json:"utilization,omitempty"`
	Queue       *QueueFile       `yaml:"queue" json:"queue,omitempty"`
	Latency     *LatencyFile     `yaml:"latency" json:"latency,omitempty"`
	PerReplica  *PerReplicaFile  `yaml:"perReplica" json:"perReplica,omitempty"`
	Object      *ObjectFile      `yaml:"object" json:"object,omitempty"`
	Pods        *PodsFile        `yaml:"pods" json:"pods,omitempty"`
}

// UtilizationFile: CPU or memory from metrics.k8s.io against pod requests.
type UtilizationFile struct {
	// Resource: cpu or memory.
	// +kubebuilder:validation:Enum=cpu;memory
	Resource string `yaml:"resource" json:"resource,omitempty"`
	// TargetPercent of requests, 1..1000.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	TargetPercent int32 `yaml:"targetPercent" json:"targetPercent,omitempty"`
}

// QueueFile: a work queue.
type QueueFile struct {
	// RabbitMQ reads the queues straight from the management API.
	RabbitMQ *RabbitMQQueueFile `yaml:"rabbitmq" json:"rabbitmq,omitempty"`
	// Metric-based alternative: names of metric definitions, keyed by Key.
	Backlog        string `yaml:"backlogMetric" json:"backlogMetric,omitempty"`
	ArrivalRate    string `yaml:"arrivalRateMetric" json:"arrivalRateMetric,omitempty"`
	CompletionRate string `yaml:"completionRateMetric" json:"completionRateMetric,omitempty"`
	// Unacked, optional: the messages delivered to consumers and not yet
	// acknowledged (in progress, and prefetched), e.g. RabbitMQ's
	// rabbitmq_queue_messages_unacked. backlogMetric then counts only the
	// messages waiting (rabbitmq_queue_messages_ready); the backlog is the
	// two together. With concurrencyPerReplica it tells the pods' pace. A
	// reading that is missing or not a count is left out, as if unset.
	Unacked string `yaml:"unackedMetric" json:"unackedMetric,omitempty"`
	// Key selects the series of those metrics (default: the service name).
	Key string `yaml:"key" json:"key,omitempty"`
	// DrainTime: the backlog should be gone within this time.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	DrainTime Duration `yaml:"drainTime" json:"drainTime,omitempty"`
	// TargetUtilization of measured per-replica throughput, (0,1], default 0.8.
	// With concurrencyPerReplica it is one replica's headroom: a larger
	// pool keeps spare slots growing as the square root of its load.
	TargetUtilization float64 `yaml:"targetUtilization" json:"targetUtilization,omitempty"`
	// ThroughputPerReplica: messages/s one replica completes, used until measured.
	ThroughputPerReplica float64 `yaml:"throughputPerReplica" json:"throughputPerReplica,omitempty"`
	// ConcurrencyPerReplica: messages one replica works on at once (its
	// worker slots; its consumer prefetch when it works every delivered
	// message at once). With the messages in progress (the management
	// API's unacknowledged count, or unackedMetric) it tells, by Little's
	// law, the pace a replica reaches when full, so a pace learned while
	// a dependency was slow gives way once the pods show they are not
	// busy, and the pool is sized by its slots (square-root staffing).
	// Unset: the pace is only what is measured or configured, and the
	// pool keeps targetUtilization of it whatever its size.
	// +kubebuilder:validation:Minimum=0
	ConcurrencyPerReplica float64 `yaml:"concurrencyPerReplica" json:"concurrencyPerReplica,omitempty"`
}

// RabbitMQQueueFile lists queues whose backlogs add up.
type RabbitMQQueueFile struct {
	VHost  string   `yaml:"vhost" json:"vhost,omitempty"`
	Queues []string `yaml:"queues" json:"queues,omitempty"`
}

// LatencyFile: a latency quantile metric (seconds) against an SLO.
type LatencyFile struct {
	Metric string `yaml:"metric" json:"metric,omitempty"`
	Key    string `yaml:"key" json:"key,omitempty"`
	// Quantile the metric stands for, (0, 1). The metric's query decides
	// it when it computes histogram_quantile(φ, …); then this may be left
	// out and, when given, must agree. It is needed only for a query that
	// does not show it, such as a recorded series.
	Quantile float64 `yaml:"quantile" json:"quantile,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	SLO Duration `yaml:"slo" json:"slo,omitempty"`
}

// PerReplicaFile: a metric total divided over replicas.
type PerReplicaFile struct {
	Metric           string  `yaml:"metric" json:"metric,omitempty"`
	Key              string  `yaml:"key" json:"key,omitempty"`
	TargetPerReplica float64 `yaml:"targetPerReplica" json:"targetPerReplica,omitempty"`
}

// ObjectFile: a single value against a target.
type ObjectFile struct {
	Metric string  `yaml:"metric" json:"metric,omitempty"`
	Key    string  `yaml:"key" json:"key,omitempty"`
	Target float64 `yaml:"target" json:"target,omitempty"`
	// RefuseAgainstLoad keeps the current count when the proposal points
	// against the load (HPA has no such refusal; off by default).
	RefuseAgainstLoad bool `yaml:"refuseAgainstLoad" json:"refuseAgainstLoad,omitempty"`
}

// PodsFile: a metric sampled per pod, averaged against a per-pod target
// (HPA's Pods metric). The metric's query must give one series per pod,
// keyed by a pod-name label (its keyLabel, e.g. pod).
type PodsFile struct {
	Metric       string  `yaml:"metric" json:"metric,omitempty"`
	TargetPerPod float64 `yaml:"targetPerPod" json:"targetPerPod,omitempty"`
}

// BehaviorFile has the shape of autoscaling/v2 HorizontalPodAutoscalerBehavior
// plus a tolerance.
type BehaviorFile struct {
	// Legacy reproduces an HPA without spec.behavior: a scale-up capped at
	// max(2×current, 4) per tick, no scale-up stabilization, scaleDown's
	// stabilizationWindow (default 5m) as the downscale window.
	Legacy    bool              `yaml:"legacy" json:"legacy,omitempty"`
	Tolerance *float64          `yaml:"tolerance" json:"tolerance,omitempty"`
	ScaleUp   *ScalingRulesFile `yaml:"scaleUp" json:"scaleUp,omitempty"`
	ScaleDown *ScalingRulesFile `yaml:"scaleDown" json:"scaleDown,omitempty"`
}

// ScalingRulesFile is one direction's rules.
type ScalingRulesFile struct {
	// Tolerance for this direction only (autoscaling/v2 behavior.scaleUp /
	// scaleDown.tolerance); unset: the behavior's tolerance.
	Tolerance           *float64  `yaml:"tolerance" json:"tolerance,omitempty"`
	StabilizationWindow *Duration `yaml:"stabilizationWindow" json:"stabilizationWindow,omitempty"`
	// +kubebuilder:validation:Enum=Max;Min;Disabled
	SelectPolicy string           `yaml:"selectPolicy" json:"selectPolicy,omitempty"`
	Policies     []RatePolicyFile `yaml:"policies" json:"policies,omitempty"`
}

// RatePolicyFile is one rate policy.
type RatePolicyFile struct {
	// Type: Pods or Percent.
	// +kubebuilder:validation:Enum=Pods;Percent
	Type string `yaml:"type" json:"type,omitempty"`
	// +kubebuilder:validation:Minimum=1
	Value int32 `yaml:"value" json:"value,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	Period Duration `yaml:"period" json:"period,omitempty"`
}

// Duration is a time.Duration (nanoseconds) written as "30s", "5m",
// "500ms". Its underlying type is int64 rather than time.Duration so that
// the resource's schema can declare it a string of decimal numbers, each
// with a unit (ns, us, µs, ms, s, m, h), such as "1m30s".
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:Format=""
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
type Duration int64

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
