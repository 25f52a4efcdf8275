package policy

import "time"

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

// SignalResult is one signal's contribution to a decision.
type SignalResult struct {
	Name   string
	Kind   SignalKind
	Status ObservationStatus
	// Value and Target in the signal's unit: percent for utilization,
	// seconds for latency and queue drain time estimate, the metric's unit
	// otherwise.
	Value  float64
	Target float64
	// Proposal is the replica count this signal asks for; 0 when unusable.
	Proposal int32
	// Breach is true when the signal asks for more than the current replicas.
	Breach bool
	// AttributedTo lists the dependencies whose saturation explains this
	// latency breach; such a signal does not scale its own service.
	AttributedTo []string
	// Note is a short human explanation.
	Note string
}

// Decision is the outcome for one service.
type Decision struct {
	Service string
	Current int32
	Ready   int32
	// Proposal is the replica count the signals asked for, before behavior,
	// bounds, pinning and budget.
	Proposal int32
	Desired  int32
	// Bottleneck is true when the service is saturated on its own signals, or
	// is the deepest saturated dependency explaining another's latency.
	Bottleneck bool
	// Explains lists services whose latency breach this bottleneck explains.
	Explains  []string
	LimitedBy Limit
	Signals   []SignalResult
	// Reason is one line a human can read.
	Reason string
}

// Change is Desired-Current.
func (d Decision) Change() int32 { return d.Desired - d.Current }

// Plan is the outcome of one Decide call.
type Plan struct {
	Time      time.Time
	Decisions []Decision
	// TotalDesired is the sum of desired replicas over all decisions.
	TotalDesired int32
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
	Services map[string]ServiceState
}

// ServiceState is one service's history.
type ServiceState struct {
	// Recommendations within the longest stabilization window, oldest first.
	Recommendations []Recommendation
	// Events are replica changes seen within the longest rate period.
	Events []ScaleEvent
	// LastCurrent is the current replica count seen by the last decision;
	// LastSeen is false before the first.
	LastCurrent int32
	LastSeen    bool
	// Pending is the change the last decision asked for. When the next
	// snapshot shows it applied, it becomes an event stamped with the decision
	// time; when not (dry-run, failed write), it is dropped.
	Pending *ScaleEvent
}

// Recommendation is a timestamped pre-limit replica recommendation.
type Recommendation struct {
	Time     time.Time
	Replicas int32
}

// ScaleEvent is a change of replicas at a time.
type ScaleEvent struct {
	Time time.Time
	From int32
	To   int32
}
