package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/elmascale/elmascale/config"
)

// Names of the resource.
const (
	Group    = "elmascale.io"
	Version  = "v1alpha1"
	Kind     = "ScalingPolicy"
	Resource = "scalingpolicies"
)

// APIVersion is the resource's apiVersion, the configuration file's too.
const APIVersion = Group + "/" + Version

// GroupVersionResource addresses ScalingPolicies with a dynamic client.
var GroupVersionResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// ScalingPolicy is the autoscaling policy of the namespace it lives in: the
// services elmascale manages there, their signals, bounds and behavior
// (spec), and what elmascale last decided for each of them (status).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=sp;scalepol,categories=elmascale
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`,description="apply scales; dry-run only recommends"
// +kubebuilder:printcolumn:name="Services",type=integer,JSONPath=`.status.serviceCount`,description="services managed"
// +kubebuilder:printcolumn:name="Bottleneck",type=string,JSONPath=`.status.bottleneck`,description="the services found to be bottlenecks in the last tick"
// +kubebuilder:printcolumn:name="Last Action",type=string,JSONPath=`.status.lastAction`,description="the last change of a service's replicas (applied or recommended)"
// +kubebuilder:printcolumn:name="Over Budget",type=integer,JSONPath=`.status.overBudget`,priority=1,description="services held back by the cluster budget"
// +kubebuilder:printcolumn:name="Handed Off",type=integer,JSONPath=`.status.handedOff`,priority=1,description="services another autoscaler (HPA, KEDA) or a pause annotation owns"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ScalingPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the configuration, in the configuration file's schema
	// (without its apiVersion and kind). Its namespace, when set, must be
	// the resource's own.
	Spec config.File `json:"spec"`
	// Status is written by elmascale.
	Status ScalingPolicyStatus `json:"status,omitempty"`
}

// ScalingPolicyList is a list of ScalingPolicies.
//
// +kubebuilder:object:root=true
type ScalingPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScalingPolicy `json:"items"`
}

// ScalingPolicyStatus is what elmascale made of the policy in its last
// tick.
type ScalingPolicyStatus struct {
	// ObservedGeneration is the spec generation the policy in force was
	// compiled from. When it lags metadata.generation, the newer spec
	// could not be compiled and the condition Ready says why.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Mode is apply (replicas are written) or dry-run (only recommended).
	// +optional
	Mode string `json:"mode,omitempty"`
	// ServiceCount is how many services the policy in force manages.
	// +optional
	ServiceCount int32 `json:"serviceCount"`
	// Bottleneck names the services found to be bottlenecks in the last
	// tick, comma-separated; empty when none is.
	// +optional
	Bottleneck string `json:"bottleneck,omitempty"`
	// LastAction is the last change of replicas elmascale applied (or, in
	// dry-run, recommended), such as "worker 2→4".
	// +optional
	LastAction string `json:"lastAction,omitempty"`
	// LastActionTime is when LastAction happened.
	// +optional
	LastActionTime *metav1.Time `json:"lastActionTime,omitempty"`
	// LastTickTime is the time of the tick this status is from.
	// +optional
	LastTickTime *metav1.Time `json:"lastTickTime,omitempty"`
	// OverBudget counts the services the cluster budget held back. The
	// counts are written even when zero, so kubectl prints 0, not <none>.
	// +optional
	OverBudget int32 `json:"overBudget"`
	// HandedOff counts the services left to another autoscaler or paused.
	// +optional
	HandedOff int32 `json:"handedOff"`
	// Services holds every managed service's decision, by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=2000
	Services []ServiceStatus `json:"services,omitempty"`
	// Conditions: Ready (the spec in force is the latest), SourcesHealthy
	// (every signal resolved), DryRun, Degraded (something wastes or
	// withholds capacity: a spec that does not compile, hand-offs, the
	// budget, missing targets).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ServiceStatus is one service's last decision.
type ServiceStatus struct {
	// Name of the service, as in spec.services.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Current replicas of its target (spec.replicas).
	Current int32 `json:"current"`
	// Ready replicas of its target.
	Ready int32 `json:"ready"`
	// Desired is the replica count elmascale set (apply mode).
	// +optional
	Desired *int32 `json:"desired,omitempty"`
	// Recommended is the replica count elmascale would set (dry-run mode).
	// +optional
	Recommended *int32 `json:"recommended,omitempty"`
	// Bottleneck is true when the service is saturated on its own signals,
	// or is the deepest saturated dependency behind another's latency.
	// +optional
	Bottleneck bool `json:"bottleneck,omitempty"`
	// LimitedBy names the rule that kept the count from the signals'
	// proposal: hold, fallback, stabilization, rate, min, max, pinned,
	// budget; empty when none did.
	// +optional
	LimitedBy string `json:"limitedBy,omitempty"`
	// HandedOff says who else scales the target, when someone does.
	// +optional
	HandedOff string `json:"handedOff,omitempty"`
	// Reason is the decision in one sentence.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// LastChangeTime is when the desired (or recommended) count last
	// changed.
	// +optional
	LastChangeTime *metav1.Time `json:"lastChangeTime,omitempty"`
}

// Condition types.
const (
	ConditionReady          = "Ready"
	ConditionSourcesHealthy = "SourcesHealthy"
	ConditionDryRun         = "DryRun"
	ConditionDegraded       = "Degraded"
)
