package policy

import (
	"math"
	"time"
)

// Spec is everything Decide needs to know about the services it manages.
// It is built and validated by package config; Decide assumes it is valid.
type Spec struct {
	// Services in a stable order; decisions come out in the same order.
	Services []ServiceSpec `json:"services,omitempty"`
	// StaleAfter is the age past which an observation is treated as missing.
	// Zero means observations never go stale.
	StaleAfter time.Duration `json:"staleAfter,omitempty"`
	// AttributionMemory is how long a service that was a bottleneck keeps
	// explaining its callers' breaches after its own signals recover: its
	// new pods are still starting and the callers' latency windows still
	// hold the slow requests. Zero means no memory.
	AttributionMemory time.Duration `json:"attributionMemory,omitempty"`
	// Budget caps the cluster-wide total of replicas; zero values mean no cap.
	Budget Budget `json:"budget,omitempty"`
	// Mesh, when set, makes the service mesh's measurements (Snapshot.Mesh)
	// the call graph and the source of each service's own latency.
	Mesh *MeshSpec `json:"mesh,omitempty"`
}

// Budget limits what all managed services may use together.
type Budget struct {
	// MaxTotalReplicas caps the sum of desired replicas over all managed
	// services. Zero means unlimited.
	MaxTotalReplicas int32 `json:"maxTotalReplicas,omitempty"`
}

// ServiceSpec describes one scalable service (one Deployment or StatefulSet).
type ServiceSpec struct {
	Name string `json:"name,omitempty"`
	// MinReplicas and MaxReplicas bound every decision, 0 <= Min <= Max.
	MinReplicas int32 `json:"minReplicas,omitempty"`
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// Pinned services cannot run as more than one instance: they are held at
	// exactly one replica whatever their signals or bounds say.
	Pinned bool `json:"pinned,omitempty"`
	// DependsOn names the services this one calls synchronously. A latency
	// breach here that a saturated dependency explains scales the dependency.
	DependsOn []string     `json:"dependsOn,omitempty"`
	Signals   []SignalSpec `json:"signals,omitempty"`
	Behavior  Behavior     `json:"behavior,omitempty"`
	// FallbackReplicas, when > 0, is the replica count to move towards when
	// every signal of the service is missing. It only ever raises replicas:
	// missing data never scales a service down.
	FallbackReplicas int32 `json:"fallbackReplicas,omitempty"`
	// Burst, when set, lets DecideBurst scale the service up between ticks
	// when its queue signals jump.
	Burst *BurstSpec `json:"burst,omitempty"`
}

// BurstSpec is when the burst path acts for a service.
type BurstSpec struct {
	// Threshold is how many times its current replicas the service's queue
	// signals must ask for before the burst path scales it up (Knative's
	// panic threshold: 2 means 200%). At most 1 means any scale-up the
	// queue signals ask for.
	Threshold float64 `json:"threshold,omitempty"`
}

// SignalKind names how a signal turns an observation into a replica count.
type SignalKind string

// The signal kinds.
const (
	// KindUtilization is a resource (CPU or memory) usage relative to the pods'
	// requests, with the HPA replica calculator's semantics.
	KindUtilization SignalKind = "utilization"
	// KindQueue is a work queue: replicas to drain the backlog within a target
	// time while keeping up with arrivals.
	KindQueue SignalKind = "queue"
	// KindLatency is a latency quantile compared with an SLO.
	KindLatency SignalKind = "latency"
	// KindPerReplica is a metric whose total is divided over replicas (KEDA's
	// AverageValue): desired = ceil(total / targetPerReplica).
	KindPerReplica SignalKind = "perReplica"
	// KindObject is a single value compared with a target (HPA Object and
	// External metrics with a Value target): desired = ceil(ready * value /
	// target), or ceil(value / target) from zero replicas.
	KindObject SignalKind = "object"
	// KindPods is a metric sampled per pod whose average is compared with a
	// per-pod target (HPA Pods metrics), with the HPA replica calculator's
	// handling of missing and unready pods, as for utilization.
	KindPods SignalKind = "pods"
)

// SignalSpec is one configured signal of a service. Exactly one of the kind
// specific fields matching Kind is set.
type SignalSpec struct {
	// Name identifies the signal within its service; snapshot observations are
	// keyed by it.
	Name string     `json:"name,omitempty"`
	Kind SignalKind `json:"kind,omitempty"`
	// Symptom marks a signal whose breach a saturated dependency can cause,
	// such as in-flight requests at a caller: like a latency breach, it is
	// then attributed to the dependency instead of scaling this service.
	// Latency signals are always symptoms.
	Symptom bool `json:"symptom,omitempty"`
	// Tolerance is the relative band around the target inside which the signal
	// proposes no change (HPA's 10%), in both directions. Zero means use the
	// service's behavior tolerances.
	Tolerance float64 `json:"tolerance,omitempty"`

	Utilization *UtilizationSpec `json:"utilization,omitempty"`
	Queue       *QueueSpec       `json:"queue,omitempty"`
	Latency     *LatencySpec     `json:"latency,omitempty"`
	PerReplica  *PerReplicaSpec  `json:"perReplica,omitempty"`
	Object      *ObjectSpec      `json:"object,omitempty"`
	Pods        *PodsSpec        `json:"pods,omitempty"`
}

// Resource names for utilization signals.
const (
	ResourceCPU    = "cpu"
	ResourceMemory = "memory"
)

// UtilizationSpec targets an average resource utilization across pods.
type UtilizationSpec struct {
	// Resource is "cpu" or "memory".
	Resource string `json:"resource,omitempty"`
	// TargetPercent of the pods' requests, e.g. 70.
	TargetPercent int32 `json:"targetPercent,omitempty"`
	// CPUInitializationPeriod: a pod younger than this whose readiness or
	// metric sample is not settled is treated as unready (HPA default 5m).
	CPUInitializationPeriod time.Duration `json:"cpuInitializationPeriod,omitempty"`
	// InitialReadinessDelay: a pod that turned unready within this much of
	// its start is ignored as still starting (HPA default 30s).
	InitialReadinessDelay time.Duration `json:"initialReadinessDelay,omitempty"`
}

// QueueSpec targets draining a work queue.
type QueueSpec struct {
	// DrainTime is how soon the messages waiting (the backlog less those in
	// progress) should be worked off, on top of keeping up with arrivals.
	DrainTime time.Duration `json:"drainTime,omitempty"`
	// TargetUtilization is the fraction of measured per-replica throughput
	// planned for, leaving headroom (0 < u <= 1, default 0.8). With
	// ConcurrencyPerReplica it is one replica's headroom, and a larger pool
	// keeps spare slots that grow as the square root of its load
	// (pooledHeadroom).
	TargetUtilization float64 `json:"targetUtilization,omitempty"`
	// ThroughputPerReplica is the configured estimate of messages a replica
	// completes per second, used until one is measured. Zero means none.
	ThroughputPerReplica float64 `json:"throughputPerReplica,omitempty"`
	// ConcurrencyPerReplica is how many messages one replica works on at
	// once (its worker slots). With it, and the messages in progress
	// (QueueObservation.Unacked), the pace a replica reaches when full is
	// told by Little's law even while it is not full: the time a message
	// takes is in progress / completion rate, and a replica completes
	// ConcurrencyPerReplica messages in that time. Zero: not known, and
	// the pace is only what was measured or configured.
	ConcurrencyPerReplica float64 `json:"concurrencyPerReplica,omitempty"`
}

// LatencySpec targets a latency quantile.
type LatencySpec struct {
	// Quantile the observation stands for, e.g. 0.95 (informational).
	Quantile float64 `json:"quantile,omitempty"`
	// SLO is the latency target.
	SLO time.Duration `json:"slo,omitempty"`
}

// PerReplicaSpec targets a per-replica average of a metric's total value.
type PerReplicaSpec struct {
	// TargetPerReplica is the value each replica should carry, e.g. 50 in-flight
	// requests or 100 requests per second.
	TargetPerReplica float64 `json:"targetPerReplica,omitempty"`
}

// ObjectSpec targets a single value.
type ObjectSpec struct {
	// Target value; the observation is scaled against it proportionally.
	Target float64 `json:"target,omitempty"`
	// RefuseAgainstLoad keeps the current count when the proposal points
	// against the load: with few ready pods, a value above target can ask
	// for fewer replicas than run now (3 replicas, 1 ready, value at 1.9×
	// target: ceil(1.9×1) = 2), and one below target for more. HPA has no
	// such refusal for Object and External metrics, so it is off by
	// default; set it to hold instead of scaling down a loaded service
	// while its pods start.
	RefuseAgainstLoad bool `json:"refuseAgainstLoad,omitempty"`
}

// PodsSpec targets the average of a metric sampled per pod.
type PodsSpec struct {
	// TargetPerPod is the value each pod should carry on average, in the
	// metric's unit (HPA's averageValue), e.g. 50 requests per second.
	TargetPerPod float64 `json:"targetPerPod,omitempty"`
}

// SelectPolicy chooses among rate policies, as autoscaling/v2 does.
type SelectPolicy string

// Select policies.
const (
	SelectMax      SelectPolicy = "Max"
	SelectMin      SelectPolicy = "Min"
	SelectDisabled SelectPolicy = "Disabled"
)

// RatePolicyType is how a rate policy's value is counted.
type RatePolicyType string

// Rate policy types.
const (
	RatePods    RatePolicyType = "Pods"
	RatePercent RatePolicyType = "Percent"
)

// RatePolicy allows at most Value pods (or percent of the replicas at the
// start of the period) to change within Period.
type RatePolicy struct {
	Type   RatePolicyType `json:"type,omitempty"`
	Value  int32          `json:"value"`
	Period time.Duration  `json:"period,omitempty"`
}

// ScalingRules are the behavior of one direction.
type ScalingRules struct {
	// StabilizationWindow: scaling up uses the lowest, scaling down the
	// highest recommendation seen within this window.
	StabilizationWindow time.Duration `json:"stabilizationWindow,omitempty"`
	SelectPolicy        SelectPolicy  `json:"selectPolicy,omitempty"`
	Policies            []RatePolicy  `json:"policies,omitempty"`
	// Tolerance, when set, is this direction's band (autoscaling/v2
	// behavior.scaleUp.tolerance and behavior.scaleDown.tolerance): a ratio
	// of load to target up to 1+Tolerance (scale-up) or down to 1−Tolerance
	// (scale-down) proposes no change. Nil means Behavior.Tolerance.
	Tolerance *float64 `json:"tolerance,omitempty"`
}

// Behavior is autoscaling/v2 HorizontalPodAutoscalerBehavior plus tolerance.
type Behavior struct {
	ScaleUp   ScalingRules `json:"scaleUp,omitempty"`
	ScaleDown ScalingRules `json:"scaleDown,omitempty"`
	// Tolerance is the default relative band around a signal's target in
	// which no change is proposed (HPA default 0.1).
	Tolerance float64 `json:"tolerance,omitempty"`
	// Legacy reproduces the HPA controller for an HPA without
	// spec.behavior: no rate policies and no scale-up stabilization; a
	// scale-down keeps the highest recommendation of the last
	// ScaleDown.StabilizationWindow (the controller's
	// --horizontal-pod-autoscaler-downscale-stabilization, 5m by default),
	// and a scale-up is capped at max(2×current, 4). The selectPolicy,
	// policies and ScaleUp.StabilizationWindow are ignored; the tolerances
	// still apply.
	Legacy bool `json:"legacy,omitempty"`
}

// DefaultBehavior returns the autoscaling/v2 defaults: scale up at once by
// the larger of 100% or 4 pods per 15s; scale down by up to 100% per 15s
// after a 300s stabilization window; 10% tolerance.
func DefaultBehavior() Behavior {
	return Behavior{
		ScaleUp: ScalingRules{
			StabilizationWindow: 0,
			SelectPolicy:        SelectMax,
			Policies: []RatePolicy{
				{Type: RatePercent, Value: 100, Period: 15 * time.Second},
				{Type: RatePods, Value: 4, Period: 15 * time.Second},
			},
		},
		ScaleDown: ScalingRules{
			StabilizationWindow: 300 * time.Second,
			SelectPolicy:        SelectMax,
			Policies: []RatePolicy{
				{Type: RatePercent, Value: 100, Period: 15 * time.Second},
			},
		},
		Tolerance: 0.1,
	}
}

// LegacyBehavior returns what the HPA controller does for an HPA without
// spec.behavior, with the controller's default 5 minute downscale
// stabilization and 10% tolerance.
func LegacyBehavior() Behavior {
	return Behavior{
		Legacy:    true,
		ScaleDown: ScalingRules{StabilizationWindow: 300 * time.Second},
		Tolerance: 0.1,
	}
}

// Snapshot is one collection of every service's state and signals.
type Snapshot struct {
	// Time the collection finished.
	Time     time.Time                     `json:"time,omitempty"`
	Services map[string]ServiceObservation `json:"services,omitempty"`
	// Mesh is the service mesh's view of the same moment; nil when no mesh
	// source is configured.
	Mesh *MeshObservation `json:"mesh,omitempty"`
}

// ServiceObservation is what is known about one service at snapshot time.
type ServiceObservation struct {
	// Found is false when the scale target could not be read; the service is
	// then held.
	Found bool `json:"found"`
	// CurrentReplicas is the target's spec.replicas.
	CurrentReplicas int32 `json:"currentReplicas"`
	// ReadyReplicas is the number of ready pods.
	ReadyReplicas int32 `json:"readyReplicas"`
	// Signals by signal name.
	Signals map[string]Observation `json:"signals,omitempty"`
}

// ObservationStatus says whether an observation can be used.
type ObservationStatus string

// Observation statuses. Only StatusOK observations are used; everything else
// counts as missing, which never scales a service down.
const (
	StatusOK      ObservationStatus = "ok"
	StatusMissing ObservationStatus = "missing" // the source had no data
	StatusFailed  ObservationStatus = "failed"  // the source errored or its breaker is open
	StatusStale   ObservationStatus = "stale"   // older than Spec.StaleAfter (set by Decide)
	StatusInvalid ObservationStatus = "invalid" // NaN, infinite or negative (set by Decide or the source)
)

// Observation is one signal's measurement.
type Observation struct {
	Status ObservationStatus `json:"status"`
	// Time the sample was taken (the source's timestamp, not the collection's).
	Time time.Time `json:"time,omitempty"`
	// Value: seconds for latency; the total metric value for perReplica; the
	// value for object signals. Unused for utilization, pods and queue.
	Value float64 `json:"value"`
	// Pods: per-pod samples for utilization and pods signals.
	Pods []PodSample `json:"pods,omitempty"`
	// Queue: backlog and rates for queue signals.
	Queue *QueueObservation `json:"queue,omitempty"`
	// Error explains a failed observation, for the decision's reason.
	Error string `json:"error,omitempty"`
}

// PodSample is one pod's sample and state, for utilization and pods
// signals. Amounts are millicores for CPU and bytes for memory.
type PodSample struct {
	Name string `json:"name,omitempty"`
	// Phase is the pod's phase: Pending, Running, Succeeded, Failed.
	Phase string `json:"phase,omitempty"`
	// Deleting is true when the pod has a deletion timestamp.
	Deleting bool `json:"deleting,omitempty"`
	// Ready is the PodReady condition; ReadyKnown is false when the pod has
	// no such condition.
	Ready      bool `json:"ready"`
	ReadyKnown bool `json:"readyKnown"`
	// ReadyTransition is the PodReady condition's last transition time.
	ReadyTransition time.Time `json:"readyTransition,omitempty"`
	// StartTime is the pod's status.startTime; zero when unset.
	StartTime time.Time `json:"startTime,omitempty"`
	// HasMetric is false when the source (metrics.k8s.io, or the pods
	// signal's query) had no sample for the pod.
	HasMetric bool `json:"hasMetric"`
	// MetricTime and MetricWindow are the sample's timestamp and window.
	MetricTime   time.Time     `json:"metricTime,omitempty"`
	MetricWindow time.Duration `json:"metricWindow,omitempty"`
	// Usage and Request, for utilization signals: millicores for CPU, bytes
	// for memory.
	Usage   int64 `json:"usage"`
	Request int64 `json:"request"`
	// Value is the pod's sample, for pods signals, in the metric's unit.
	Value float64 `json:"value,omitempty"`
}

// Pod phases used by the per-pod calculations.
const (
	PodPending = "Pending"
	PodRunning = "Running"
	PodFailed  = "Failed"
)

// QueueObservation is a work queue's state.
type QueueObservation struct {
	// Backlog is messages waiting plus messages delivered but not acknowledged.
	Backlog float64 `json:"backlog"`
	// ArrivalRate is messages published per second.
	ArrivalRate float64 `json:"arrivalRate"`
	// CompletionRate is messages acknowledged per second.
	CompletionRate float64 `json:"completionRate"`
	// Unacked is the part of Backlog delivered to consumers and not yet
	// acknowledged: work in progress (and prefetched), not waiting. Zero
	// when the source cannot tell, which makes all of Backlog count as
	// waiting.
	Unacked float64 `json:"unacked,omitempty"`
	// UnackedTime, when set, is when Unacked was sampled, if apart from the
	// rest (a separate series); a sample older than Spec.StaleAfter is not
	// used to tell the pods' pace.
	UnackedTime time.Time `json:"unackedTime,omitempty"`
	// Consumers currently attached.
	Consumers int32 `json:"consumers"`
	// ThroughputPerReplica, when > 0, is a measured per-replica capacity in
	// messages per second (e.g. concurrency / mean processing time).
	ThroughputPerReplica float64 `json:"throughputPerReplica,omitempty"`
}

// Waiting is the messages waiting for a consumer: the backlog less those
// delivered and not yet acknowledged, never below zero.
func (q *QueueObservation) Waiting() float64 { return math.Max(0, q.Backlog-q.Unacked) }
