package policy

import (
	"fmt"
	"time"
)

// Limit names the rule that made a decision's desired count differ from its
// proposal, or held it.
type Limit string

// Limits, in the order Decide applies them.
const (
	LimitNone          Limit = ""
	LimitHold          Limit = "hold"          // signals missing or target not found: current kept
	LimitFallback      Limit = "fallback"      // every signal missing: moved to the fallback count
	LimitStabilization Limit = "stabilization" // a stabilization window kept an earlier recommendation
	LimitRate          Limit = "rate"          // a rate policy capped the change
	LimitMin           Limit = "min"           // raised to MinReplicas
	LimitMax           Limit = "max"           // lowered to MaxReplicas
	LimitPinned        Limit = "pinned"        // single-instance service held at 1
	LimitBudget        Limit = "budget"        // the cluster budget left no more room
)

// ScalingLimitedReason is the reason the HPA controller gives its
// ScalingLimited condition when it fits a recommendation to the rate
// policies (or the legacy scale-up cap) and the bounds. It marshals as the
// controller's name for it; the zero value, ReasonNone, as nothing.
type ScalingLimitedReason uint8

// ScalingLimited reasons, as the HPA controller names them.
const (
	// ReasonNone: the rate and bounds step did not run.
	ReasonNone ScalingLimitedReason = iota
	// ReasonDesiredWithinRange: nothing had to change the recommendation.
	ReasonDesiredWithinRange
	// ReasonScaleUpLimit: a scale-up rate policy, or the legacy cap of
	// max(2×current, 4), allowed fewer replicas.
	ReasonScaleUpLimit
	// ReasonScaleDownLimit: a scale-down rate policy allowed fewer removals.
	ReasonScaleDownLimit
	// ReasonTooManyReplicas: lowered to MaxReplicas.
	ReasonTooManyReplicas
	// ReasonTooFewReplicas: raised to MinReplicas.
	ReasonTooFewReplicas
)

var scalingLimitedNames = [...]string{
	ReasonNone:               "",
	ReasonDesiredWithinRange: "DesiredWithinRange",
	ReasonScaleUpLimit:       "ScaleUpLimit",
	ReasonScaleDownLimit:     "ScaleDownLimit",
	ReasonTooManyReplicas:    "TooManyReplicas",
	ReasonTooFewReplicas:     "TooFewReplicas",
}

// String is the HPA controller's name of the reason.
func (r ScalingLimitedReason) String() string {
	if int(r) < len(scalingLimitedNames) {
		return scalingLimitedNames[r]
	}
	return fmt.Sprintf("ScalingLimitedReason(%d)", uint8(r))
}

// MarshalText writes the reason's name.
func (r ScalingLimitedReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a reason's name.
func (r *ScalingLimitedReason) UnmarshalText(b []byte) error {
	for i, n := range scalingLimitedNames {
		if n == string(b) {
			*r = ScalingLimitedReason(i)
			return nil
		}
	}
	return fmt.Errorf("unknown ScalingLimited reason %q", b)
}

// SignalResult is one signal's contribution to a decision.
type SignalResult struct {
	Name   string            `json:"name"`
	Kind   SignalKind        `json:"kind"`
	Status ObservationStatus `json:"status"`
	// Value and Target in the signal's unit: percent for utilization,
	// seconds for latency, messages per second for a queue (value: the
	// throughput that keeps up with arrivals and drains the backlog within
	// drainTime; target: what the current replicas handle at the target
	// utilization, 0 only with no replicas or no known capacity), the
	// metric's unit otherwise.
	Value  float64 `json:"value"`
	Target float64 `json:"target"`
	// Proposal is the replica count this signal asks for; 0 when unusable.
	Proposal int32 `json:"proposal"`
	// Breach is true when the signal asks for more than the current replicas.
	Breach bool `json:"breach,omitempty"`
	// AttributedTo lists the dependencies whose saturation explains this
	// latency breach; such a signal does not scale its own service.
	AttributedTo []string `json:"attributedTo,omitempty"`
	// Note is a short human explanation.
	Note string `json:"note,omitempty"`
}

// Decision is the outcome for one service.
type Decision struct {
	Service string `json:"service"`
	Current int32  `json:"current"`
	Ready   int32  `json:"ready"`
	// Proposal is the replica count the signals asked for, before behavior,
	// bounds, pinning and budget.
	Proposal int32 `json:"proposal"`
	Desired  int32 `json:"desired"`
	// Bottleneck is true when the service is saturated on its own signals, or
	// is the deepest saturated dependency explaining another's latency.
	Bottleneck bool `json:"bottleneck"`
	// ScalingLimited is what the HPA controller's ScalingLimited condition
	// would say of the rate and bounds step; ReasonNone when that step did
	// not run (target not found, current count outside the bounds).
	ScalingLimited ScalingLimitedReason `json:"scalingLimited,omitempty"`
	// Explains lists services whose latency breach this bottleneck explains.
	Explains  []string       `json:"explains,omitempty"`
	LimitedBy Limit          `json:"limitedBy,omitempty"`
	Signals   []SignalResult `json:"signals,omitempty"`
	// Mesh is the part of the mesh's call graph that explains the decision
	// (own latency, baseline, the heaviest call, what grew); nil when the
	// mesh did not measure the service.
	Mesh *MeshVerdict `json:"mesh,omitempty"`
	// Reason is one line a human can read.
	Reason string `json:"reason,omitempty"`
}

// Change is Desired-Current.
func (d Decision) Change() int32 { return d.Desired - d.Current }

// Plan is the outcome of one Decide call.
type Plan struct {
	Time      time.Time  `json:"time"`
	Decisions []Decision `json:"decisions"`
	// TotalDesired is the sum of desired replicas over all decisions.
	TotalDesired int32 `json:"totalDesired"`
}

// Decision returns the decision for a service.
func (p Plan) Decision(service string) (Decision, bool) {
	for _, d := range p.Decisions {
		if d.Service == service {
			return d, true
		}
	}
	return Decision{}, false
}

// State is the history Decide needs between calls: the recommendations the
// stabilization windows look back on and the scale events the rate policies
// count. Decide never modifies the State it is given.
type State struct {
	Services map[string]ServiceState `json:"services,omitempty"`

	// cache spares the next Decide work (decideCache); it never changes an
	// outcome, and a State without it, such as one read from JSON, decides
	// the same. burstCache is DecideBurst's.
	cache, burstCache *decideCache
}

// ServiceState is one service's history.
type ServiceState struct {
	// Recommendations within the longest stabilization window, oldest first.
	Recommendations []Recommendation `json:"recommendations,omitempty"`
	// Events are replica changes seen within the longest rate period.
	Events []ScaleEvent `json:"events,omitempty"`
	// LastCurrent is the current replica count seen by the last decision;
	// LastSeen is false before the first.
	LastCurrent int32 `json:"lastCurrent,omitempty"`
	LastSeen    bool  `json:"lastSeen,omitempty"`
	// BottleneckAt is when the service was last a bottleneck, for
	// Spec.AttributionMemory.
	BottleneckAt time.Time `json:"bottleneckAt,omitempty"`
	// QueueCapacity is, per queue signal, the per-replica throughput
	// (messages/s) last measured while the pool was saturated.
	QueueCapacity map[string]float64 `json:"queueCapacity,omitempty"`
	// QueueDrainedSince is when every queue signal of the service last
	// began to read drained (nothing waiting beyond one message a replica,
	// and arrivals the current replicas can take); nil while one does
	// not, or the service has none. A pointer, shared while unchanged,
	// for the reason Mesh is one.
	QueueDrainedSince *time.Time `json:"queueDrainedSince,omitempty"`
	// ReadySince is when every replica of the service last became ready
	// (the start of the current run of ticks with ready = current); nil
	// while some are not. Shared while unchanged.
	ReadySince *time.Time `json:"readySince,omitempty"`
	// Mesh is what the mesh's measurements taught of the service; nil
	// before any. A pointer, shared by the states that did not change it:
	// inline it would make every entry of Services too big for the map
	// to hold in place, an allocation per service per tick.
	Mesh *MeshHistory `json:"mesh,omitempty"`
	// Pending is the change the last decision asked for. When the next
	// snapshot shows it applied, it becomes an event stamped with the decision
	// time; when not (dry-run, failed write), it is dropped.
	Pending *ScaleEvent `json:"pending,omitempty"`
}

// Recommendation is a timestamped pre-limit replica recommendation.
type Recommendation struct {
	Time     time.Time `json:"time"`
	Replicas int32     `json:"replicas"`
}

// ScaleEvent is a change of replicas at a time.
type ScaleEvent struct {
	Time time.Time `json:"time"`
	From int32     `json:"from"`
	To   int32     `json:"to"`
}
