package policy

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// svcEval is the working state of one service during Decide.
type svcEval struct {
	spec    *ServiceSpec
	obs     ServiceObservation
	prev    ServiceState
	signals []SignalResult
	// measured is the capacity measured this tick by saturated queue
	// signals, by signal (0: none).
	measured []float64

	satBreach bool // a saturation signal asks for more
	latBreach bool // a symptom signal (latency, or marked Symptom) asks for more
	recent    bool // was a bottleneck within Spec.AttributionMemory
	anyBad    bool // some signal is unusable
	allBad    bool // every signal is unusable (and there is at least one)
	// drained: the service has queue signals and every one of them reads
	// drained this tick (queueDrained).
	drained bool

	deps    []int // DependsOn resolved to service indexes, -1 for unknown
	roots   []int // deepest saturated dependencies explaining a latency breach
	visit   uint8 // 0 new, 1 in progress, 2 done
	selfHot bool  // the service itself is a bottleneck
	// fixed: the burst path leaves this service as it is (kept at its
	// current count, its state untouched).
	fixed bool

	// The mesh's view (Spec.Mesh set, observation usable): meshTraverse
	// lets attribution walk through services that are not hot themselves,
	// the mesh having measured the path; meshRoot marks a service whose
	// own latency or time outside grew, explaining its callers' breaches,
	// for meshCause; meshHist is its next history, verdict the graph's
	// part for its decision and meshNote what the reason adds for an
	// unrelievable cause.
	meshTraverse bool
	meshRoot     bool
	// meshQuiet: the mesh judged the service against warm baselines and
	// found nothing grown; a symptom breach nothing below explains then
	// does not scale it (quietHeld).
	meshQuiet, quietHeld bool
	meshCause            MeshCause
	meshHist             MeshHistory
	verdict              *MeshVerdict
	meshNote             string
	// meshSteady, while the mesh finds a relievable queue being worked
	// off, is the replicas the arrivals alone need at the measured
	// capacity (0 otherwise): what the stabilization window remembers of
	// the tick instead of a proposal that also drains the backlog.
	meshSteady int32
	// queueSteady, while every queue signal of the service is usable and
	// one of them works off a backlog, is the most replicas any of them
	// needs for its arrivals alone (0 otherwise); remembered in the same
	// way.
	queueSteady int32

	d Decision
}

// initEval sets e up for service i (s, observed as obs) at the start of a
// call: its signals' results go in results, its history is prev's.
func initEval(e *svcEval, c *decideCache, i int, s *ServiceSpec, obs ServiceObservation, prev State, results []SignalResult, stride int) {
	lo, hi := c.sigStart[i], c.sigStart[i+1]
	rlo, rhi := lo+stride*i, hi+stride*i
	*e = svcEval{
		spec: s, obs: obs, prev: prev.Services[s.Name], deps: c.deps[i],
		signals: results[rlo : rhi : rhi+stride], measured: c.measured[lo:hi:hi], roots: e.roots[:0],
	}
	if e.prev.Mesh != nil {
		e.meshHist = *e.prev.Mesh
	}
}

// Decide computes the desired replicas of every service in spec from one
// snapshot, the history in prev, and the current time. It is pure: it reads
// no clock, does no I/O, and returns new state instead of changing prev.
//
// A steady tick allocates a handful of slices for the whole plan rather
// than some per service: notes and reasons are only written again when
// what they say changed (see decideCache), and the new state's histories
// share a few allocations.
func Decide(spec Spec, snap Snapshot, prev State, now time.Time) (Plan, State) {
	return decide(spec, snap, prev, now, false)
}

// decide is Decide, or with burst DecideBurst.
func decide(spec Spec, snap Snapshot, prev State, now time.Time, burst bool) (Plan, State) {
	// The burst path reads other signals than a tick: it keeps the tick's
	// cache as it is and works in a cache of its own, carried from burst
	// to burst as the tick's is from tick to tick.
	var c *decideCache
	if burst {
		c = acquire(prev.burstCache)
	} else {
		c = acquire(prev.cache)
	}
	defer c.mu.Unlock()
	c.index(spec)
	n := len(spec.Services)
	nsig := c.sigStart[n]
	c.scratch(n, nsig)
	evals := c.evals
	// With the mesh, every service has room for one more result after
	// its signals.
	stride := 0
	if spec.Mesh != nil && !burst {
		stride = 1
	}
	var results []SignalResult
	if burst {
		// Nearly every burst call finds nothing bursting and drops its
		// results: they are worked out in the cache's space, and move out
		// of it only for a plan (below).
		if cap(c.burstResults) < nsig {
			c.burstResults = make([]SignalResult, nsig)
		}
		results = c.burstResults[:nsig]
	} else {
		results = make([]SignalResult, nsig+stride*n)
	}

	// 1. Signals: each gives a proposal or is unusable.
	staleCut := now.Add(-spec.StaleAfter)
	nrecs, nevents := 0, 0
	for i := range spec.Services {
		s := &spec.Services[i]
		e := &evals[i]
		var obs ServiceObservation
		if burst {
			// Nearly every burst call decides nothing, and most
			// services cannot burst at all: those are only marked here
			// (the rest of their eval is last call's), and set up below
			// when some service does burst.
			if s.Burst == nil {
				e.fixed = true
				continue
			}
			if obs = snap.Services[s.Name]; !burstCandidate(s, obs) {
				e.fixed = true
				continue
			}
		} else {
			obs = snap.Services[s.Name]
		}
		initEval(e, c, i, s, obs, prev, results, stride)
		lo := c.sigStart[i]
		nrecs += len(e.prev.Recommendations) + 1
		if len(e.prev.Events) > 0 || e.prev.Pending != nil {
			nevents += len(e.prev.Events) + 1
		}
		sc := signalContext{
			current: e.obs.CurrentReplicas, ready: e.obs.ReadyReplicas, tol: tolerancesOf(s.Behavior),
			staleAfter: spec.StaleAfter, snapTime: snap.Time, now: now, staleCut: staleCut, hasStaleCut: true,
			unsettled: unsettledPool(&e.prev, e.obs, now),
		}
		bad, used, queues, drained := 0, 0, 0, 0
		working, unread, steady := false, false, int32(0)
		learned := e.prev.QueueCapacity
		for j := range s.Signals {
			sig := &s.Signals[j]
			if burst && !isBurstSignal(sig) {
				continue
			}
			o, seen := e.obs.Signals[sig.Name]
			var capacity float64
			if learned != nil {
				capacity = learned[sig.Name]
			}
			sc.capacity, sc.memo = capacity, &c.notes[lo+j]
			e.measured[j] = evalSignal(&e.signals[used], sig, &o, seen, &sc)
			r := &e.signals[used]
			used++
			if sig.Kind == KindQueue {
				queues++
				if r.Status == StatusOK && sc.drained {
					drained++
				}
				if r.Status == StatusOK {
					working = working || sc.working
					steady = max(steady, sc.steady)
				} else {
					unread = true // nothing to tell that queue's need by
				}
			}
			if r.Status != StatusOK {
				bad++
				continue
			}
			if r.Breach {
				if isSymptom(sig) {
					e.latBreach = true
				} else {
					e.satBreach = true
				}
			}
		}
		e.signals = e.signals[: used : used+stride]
		e.anyBad = bad > 0
		e.allBad = bad > 0 && bad == used
		e.drained = queues > 0 && drained == queues
		if working && !unread && steady > 0 {
			e.queueSteady = steady
		}
		if at := e.prev.BottleneckAt; spec.AttributionMemory > 0 && !at.IsZero() && now.Sub(at) <= spec.AttributionMemory {
			e.recent = true
		}
	}

	if burst && !markBursting(evals) {
		// Nothing bursts: the histories stay prev's; the cache goes on
		// to the next burst.
		prev.burstCache = c
		return Plan{Time: now}, prev
	}
	if burst {
		// Something bursts: the services passed over above are set up
		// as every other fixed one, for the budget and the new state.
		for i := range spec.Services {
			s := &spec.Services[i]
			if obs := snap.Services[s.Name]; !burstCandidate(s, obs) {
				initEval(&evals[i], c, i, s, obs, prev, results, stride)
				evals[i].fixed = true
			}
		}
		// The plan's decisions keep their signals: give them their own
		// copy, which the next burst call does not write over.
		own := slices.Clone(results)
		for i := range evals {
			e := &evals[i]
			lo, k := c.sigStart[i], len(e.signals)
			e.signals = own[lo : lo+k : lo+k]
		}
	}

	// 1b. The mesh: the measured call graph and each service's own latency.
	if stride > 0 {
		meshStep(c, spec, snap, evals, now)
	}

	// 2. Attribution: a latency breach explained by saturated dependencies
	// scales those, not the symptom.
	for i := range evals {
		if evals[i].latBreach {
			attribute(evals, c.seen, i)
		}
	}
	attributeNames(evals)

	// 3. Per service: proposal, stabilization, rate, bounds, pin.
	mem := &arena{recs: make([]Recommendation, 0, nrecs)}
	if nevents > 0 {
		mem.events = make([]ScaleEvent, 0, nevents)
	}
	states := c.states
	var hists []MeshHistory
	if stride > 0 {
		hists = make([]MeshHistory, n)
	}
	for i := range evals {
		e := &evals[i]
		st := &states[i]
		if e.fixed {
			*st = e.prev
			cur := e.obs.CurrentReplicas
			e.d = Decision{Service: e.spec.Name, Current: cur, Ready: e.obs.ReadyReplicas, Proposal: cur, Desired: cur, LimitedBy: LimitHold}
			continue
		}
		carry(st, &e.prev, &e.obs, &e.spec.Behavior, now, mem)
		st.BottleneckAt = e.prev.BottleneckAt
		if e.selfHot {
			st.BottleneckAt = now
		}
		st.QueueCapacity = learnCapacity(e.prev.QueueCapacity, e.spec.Signals, e.measured)
		st.QueueDrainedSince = drainedSince(e.prev.QueueDrainedSince, e.drained, burst, now)
		st.ReadySince = readySince(&e.prev, e.obs, now)
		st.Mesh = e.prev.Mesh
		if hists != nil && e.meshHist != (MeshHistory{}) && (e.prev.Mesh == nil || *e.prev.Mesh != e.meshHist) {
			hists[i] = e.meshHist
			st.Mesh = &hists[i]
		}
		decideService(e, st, now)
		if burst && e.d.Desired < e.d.Current {
			// Scale-downs are the tick's.
			e.d.Desired, e.d.LimitedBy = e.d.Current, LimitHold
		}
	}

	// 4. Budget: scarce capacity goes to bottlenecks first, then by pressure.
	if spec.Budget.MaxTotalReplicas > 0 {
		c.wanting = applyBudget(evals, spec.Budget.MaxTotalReplicas, c.wanting)
	}
	if burst {
		// The budget trims a count above the bounds as well: still no
		// scale-down from the burst path.
		for i := range evals {
			if d := &evals[i].d; !evals[i].fixed && d.Desired < d.Current {
				d.Desired, d.LimitedBy = d.Current, LimitHold
			}
		}
	}

	// 5. Reasons, pending changes, the plan.
	changes := 0
	for i := range evals {
		if evals[i].obs.Found && evals[i].d.Desired != evals[i].d.Current {
			changes++
		}
	}
	var pending []ScaleEvent
	if changes > 0 {
		pending = make([]ScaleEvent, 0, changes)
	}
	plan := Plan{Time: now, Decisions: make([]Decision, 0, n)}
	next := State{Services: make(map[string]ServiceState, n), cache: c, burstCache: prev.burstCache}
	if burst {
		next.cache, next.burstCache = prev.cache, c
	}
	for i := range evals {
		e := &evals[i]
		st := &states[i]
		if e.fixed {
			next.Services[e.spec.Name] = *st
			continue
		}
		if burst {
			e.d.Reason = "burst: " + reason(e)
		} else {
			e.d.Reason = reasonOf(e, &c.reasons[i])
		}
		if e.obs.Found && e.d.Desired != e.d.Current {
			pending = append(pending, ScaleEvent{Time: now, From: e.d.Current, To: e.d.Desired})
			st.Pending = &pending[len(pending)-1]
		}
		next.Services[e.spec.Name] = *st
		plan.Decisions = append(plan.Decisions, e.d)
		plan.TotalDesired += e.d.Desired
	}
	return plan, next
}

// attributeNames writes, for every latency breach explained by
// dependencies, the roots' names into the breaching signals and the
// breaching service's name into each root's Explains, from two shared
// allocations.
//
// A breach with no dependency to explain it, at a service whose own
// latency or time outside grew by the mesh's measure, is that growth's:
// it is attributed to the service itself (its mesh result sizes it, or
// says why nothing is added) or to the outside destination, never scaled
// on the symptom's ratio.
func attributeNames(evals []svcEval) {
	total := 0
	for i := range evals {
		e := &evals[i]
		e.quietHeld = e.latBreach && len(e.roots) == 0 && e.meshQuiet
		e.selfHot = e.satBreach || e.meshRoot || (e.latBreach && len(e.roots) == 0 && !e.quietHeld)
		if e.latBreach {
			total += len(e.roots)
			if len(e.roots) == 0 && e.meshRoot {
				total++
			}
		}
	}
	if total == 0 {
		return
	}
	names := make([]string, 0, total)
	explains := make([]string, total)
	// Each root's Explains gets a window of explains sized by how many
	// services it explains.
	counts := make([]int, len(evals))
	for i := range evals {
		if e := &evals[i]; e.latBreach {
			for _, r := range e.roots {
				counts[r]++
			}
		}
	}
	off := 0
	for r, k := range counts {
		if k > 0 {
			evals[r].d.Explains = explains[off : off : off+k]
			off += k
		}
	}
	for i := range evals {
		e := &evals[i]
		if e.latBreach && len(e.roots) == 0 && e.meshRoot {
			blame := e.spec.Name
			if e.meshCause == CauseOutside && e.verdict != nil && e.verdict.External != "" {
				blame = e.verdict.External
			}
			start := len(names)
			names = append(names, blame)
			mine := names[start:len(names):len(names)]
			for j := range e.signals {
				if j < len(e.spec.Signals) && isSymptom(&e.spec.Signals[j]) && e.signals[j].Breach {
					e.signals[j].AttributedTo = mine
				}
			}
			continue
		}
		if !e.latBreach || len(e.roots) == 0 {
			continue
		}
		start := len(names)
		for _, r := range e.roots {
			names = append(names, evals[r].spec.Name)
			evals[r].d.Explains = append(evals[r].d.Explains, e.spec.Name)
		}
		mine := names[start:len(names):len(names)]
		for j := range e.signals {
			if j < len(e.spec.Signals) && isSymptom(&e.spec.Signals[j]) && e.signals[j].Breach {
				e.signals[j].AttributedTo = mine
			}
		}
	}
}

// attribute finds, depth first, the deepest hot dependencies that explain a
// symptom breach of service i. A dependency is hot when one of its signals
// asks for more, when the mesh saw its own latency or its time outside
// grow, or when it was a bottleneck within the attribution memory.
// A hot dependency whose own breach is only a symptom of deeper ones passes
// the blame down; one saturated on its own signals (or recently a
// bottleneck) is a root itself. Only hot services are walked; a dependency
// cycle (which config rejects) is cut rather than followed.
//
// seen dedupes each root list in O(1): seen[j] == i+1 while service i's
// roots are collected. Dependencies are all resolved before service i
// collects, so a nested call cannot overwrite i's marks.
//
// With the mesh, the walk also passes through services that are not hot:
// the mesh measured the calls, so a slow service two hops down explains a
// breach even when the service between is fine. The mesh's graph may have
// cycles (two services calling each other); the in-progress mark cuts
// them.
func attribute(evals []svcEval, seen []int32, i int) {
	e := &evals[i]
	if e.visit != 0 {
		return
	}
	e.visit = 1
	for _, j := range e.deps {
		if j >= 0 && evals[j].visit == 0 && (evals[j].hot() || evals[j].meshTraverse) {
			attribute(evals, seen, j)
		}
	}
	mark := int32(i + 1)
	add := func(r int) {
		if seen[r] != mark {
			seen[r] = mark
			e.roots = append(e.roots, r)
		}
	}
	for _, j := range e.deps {
		if j < 0 || j == i || evals[j].visit == 1 || !(evals[j].hot() || evals[j].meshTraverse) {
			continue
		}
		d := &evals[j]
		if d.satBreach || d.recent || d.meshRoot || (d.latBreach && len(d.roots) == 0) {
			add(j)
		}
		for _, r := range d.roots {
			add(r)
		}
	}
	e.visit = 2
}

// heldSymptom reports whether signal k is a symptom breach the mesh found
// no cause for (quietHeld), which does not scale the service.
func (e *svcEval) heldSymptom(k int) bool {
	return e.quietHeld && k < len(e.spec.Signals) && e.signals[k].Breach && isSymptom(&e.spec.Signals[k])
}

// hot reports whether the service may explain a caller's symptoms.
func (e *svcEval) hot() bool { return e.satBreach || e.latBreach || e.recent || e.meshRoot }

// isSymptom reports whether a signal's breach can be caused by a saturated
// dependency and so is attributed before it scales its own service.
func isSymptom(sig *SignalSpec) bool { return sig.Kind == KindLatency || sig.Symptom }

// carryHistory copies the service's history forward: it confirms or drops
// the previous decision's pending change, notes changes made by others, and
// forgets what no window reaches any more. The legacy behavior has no rate
// policies, so it keeps no scale events.
func carryHistory(prev ServiceState, obs ServiceObservation, b Behavior, now time.Time) ServiceState {
	var st ServiceState
	carry(&st, &prev, &obs, &b, now, nil)
	return st
}

// carry is carryHistory writing into st and taking the new slices from
// mem (nil: allocate). Its arguments are pointers and st is written once:
// the structs are big and hold pointers, and copying them by value cost
// more than the rest of the step.
func carry(st *ServiceState, prev *ServiceState, obs *ServiceObservation, b *Behavior, now time.Time, mem *arena) {
	keep := now.Add(-b.longestWindow())
	if b.Legacy {
		// HPA's legacy window still holds a recommendation made exactly
		// at its start.
		keep = keep.Add(-time.Nanosecond)
	}
	// One allocation each, with room for this tick's entry.
	recs := mem.takeRecs(len(prev.Recommendations) + 1)
	var events []ScaleEvent
	if !b.Legacy && (len(prev.Events) > 0 || prev.Pending != nil) {
		events = mem.takeEvents(len(prev.Events) + 1)
	}
	for _, r := range prev.Recommendations {
		if r.Time.After(keep) {
			recs = append(recs, r)
		}
	}
	if events != nil {
		for _, ev := range prev.Events {
			if ev.Time.After(keep) {
				events = append(events, ev)
			}
		}
	}
	lastCurrent, lastSeen := prev.LastCurrent, prev.LastSeen
	if obs.Found {
		cur := obs.CurrentReplicas
		switch {
		case b.Legacy:
		case prev.Pending != nil && cur == prev.Pending.To:
			// Our own change, applied. One already older than every window is
			// dropped, not taken for someone else's change made just now: that
			// would count it against the next period a second time.
			if prev.Pending.Time.After(keep) {
				events = append(events, *prev.Pending)
			}
		case prev.LastSeen && cur != prev.LastCurrent:
			events = append(events, ScaleEvent{Time: now, From: prev.LastCurrent, To: cur})
		}
		lastCurrent, lastSeen = cur, true
	}
	*st = ServiceState{Recommendations: recs, Events: events, LastCurrent: lastCurrent, LastSeen: lastSeen}
}

// remember adds a recommendation to a history. One equal to the newest
// replaces it instead: a window holds an older equal recommendation
// exactly when it holds the newer one, so only the newer one matters to
// stabilization and to pruning, and a steady service's history stays one
// entry long instead of a window's worth.
func remember(h []Recommendation, replicas int32, now time.Time) []Recommendation {
	if n := len(h); n > 0 && h[n-1].Replicas == replicas && !now.Before(h[n-1].Time) {
		h[n-1].Time = now
		return h
	}
	return append(h, Recommendation{Time: now, Replicas: replicas})
}

// decideService runs one service through proposal, stabilization, rate
// limits, bounds and pinning, recording its recommendation in st.
func decideService(e *svcEval, st *ServiceState, now time.Time) {
	s := e.spec
	cur := e.obs.CurrentReplicas
	d := &e.d
	d.Service, d.Current, d.Ready, d.Signals = s.Name, cur, e.obs.ReadyReplicas, e.signals
	d.Bottleneck = e.selfHot
	d.Mesh = e.verdict

	if !e.obs.Found {
		d.Proposal, d.Desired, d.LimitedBy = cur, cur, LimitHold
		return
	}

	// Proposal: the most any usable, unattributed signal asks for. An
	// unusable signal forbids a scale-down; all unusable holds (or falls back).
	// Latency well under its SLO only says no more replicas are needed: when
	// a saturation signal can size the service, latency leaves the
	// scale-down to it instead of holding it back to one replica a window.
	sized := false
	for _, r := range e.signals {
		sized = sized || (r.Status == StatusOK && r.Kind != KindLatency)
	}
	proposal, hasProposal := int32(0), false
	for k, r := range e.signals {
		if r.Status != StatusOK || len(r.AttributedTo) > 0 || e.heldSymptom(k) {
			continue
		}
		if sized && r.Kind == KindLatency && r.Proposal < cur {
			continue
		}
		if !hasProposal || r.Proposal > proposal {
			proposal, hasProposal = r.Proposal, true
		}
	}
	limit := LimitNone
	switch {
	case e.allBad && s.FallbackReplicas > cur:
		proposal, limit = s.FallbackReplicas, LimitFallback
	case e.allBad || (len(s.Signals) == 0):
		proposal, limit = cur, LimitHold
		if len(s.Signals) == 0 {
			limit = LimitNone
		}
	case !hasProposal:
		// Only attributed latency breaches: nothing of its own to scale on.
		proposal = cur
	case e.anyBad && proposal < cur:
		proposal, limit = cur, LimitHold
	case e.queueSteady > 0 && proposal < cur:
		// A backlog is being worked off: no replica goes until it is
		// gone (the window remembers only what the arrivals need, so
		// the pool comes down to that once it is).
		proposal = cur
	}
	d.Proposal = proposal

	desired := proposal
	switch {
	case cur > s.MaxReplicas:
		desired, limit = s.MaxReplicas, LimitMax
	case cur < s.MinReplicas:
		desired, limit = s.MinReplicas, LimitMin
	case s.Behavior.Legacy:
		if limit != LimitHold {
			stab := legacyStabilize(st.Recommendations, proposal, s.Behavior.ScaleDown.StabilizationWindow, now)
			st.Recommendations = remember(st.Recommendations, proposal, now)
			if stab != proposal {
				limit = LimitStabilization
			}
			desired = stab
		}
		limited, why, reason := legacyLimit(cur, desired, s.MinReplicas, s.MaxReplicas)
		if limited != desired {
			desired, limit = limited, why
		}
		d.ScalingLimited = reason
	default:
		if limit != LimitHold {
			stab := stabilize(queueCalmBehavior(s.Behavior, st.QueueDrainedSince, now), st.Recommendations, proposal, cur, now)
			st.Recommendations = remember(st.Recommendations, e.remembered(proposal), now)
			if stab != proposal {
				limit = LimitStabilization
			}
			desired = stab
		}
		limited, why, reason := rateLimit(s.Behavior, st.Events, desired, cur, s.MinReplicas, s.MaxReplicas, now)
		if limited != desired {
			desired, limit = limited, why
		}
		d.ScalingLimited = reason
	}
	desired = max(desired, s.MinReplicas)
	desired = min(desired, s.MaxReplicas)
	if s.Pinned && desired != 1 {
		desired, limit = 1, LimitPinned
	} else if s.Pinned && proposal > 1 {
		limit = LimitPinned
	}
	d.Desired, d.LimitedBy = desired, limit
}

// remembered is the recommendation the stabilization window keeps of this
// tick's proposal: while a relievable queue is worked off, the part of the
// proposal that drains the backlog is not a load that comes back, and the
// other load signals (CPU, requests in flight) read the backlog too; the
// window keeps only what the arrivals need at the measured capacity, so
// that once the backlog is gone the scale-down follows the arrivals
// instead of holding the drain's replicas for a whole window. The tick's
// own proposal is not changed, and while the backlog lasts the mesh
// itself asks for no fewer replicas than there are.
//
// A pool working off its queue's backlog is remembered the same way: what
// its queues' arrivals need, and no less than what the mesh asks for the
// service when the mesh is not itself working off a queue there.
func (e *svcEval) remembered(proposal int32) int32 {
	steady := e.meshSteady
	if e.queueSteady > 0 {
		steady = max(steady, e.queueSteady)
		if e.meshSteady <= 0 {
			for i := range e.signals {
				if r := &e.signals[i]; r.Kind == KindMesh && r.Status == StatusOK {
					steady = max(steady, r.Proposal)
				}
			}
		}
	}
	if steady <= 0 || steady >= proposal {
		return proposal
	}
	return steady
}

// applyBudget trims scale-ups so the total stays within maxTotal. Every
// service first keeps the smaller of its desired and current count (clamped
// to its bounds); the room left goes to bottlenecks first, then to the
// services under the most pressure. Scale-downs are never forced by the
// budget. wanting is scratch space, returned for reuse.
func applyBudget(evals []svcEval, maxTotal int32, wanting []int) []int {
	var base int64
	wanting = wanting[:0]
	for i := range evals {
		d := &evals[i].d
		floor := min(d.Desired, max(min(d.Current, evals[i].spec.MaxReplicas), evals[i].spec.MinReplicas))
		if evals[i].spec.Pinned || evals[i].fixed {
			floor = d.Desired
		}
		base += int64(floor)
		if d.Desired > floor {
			wanting = append(wanting, i)
		}
	}
	var total int64
	for i := range evals {
		total += int64(evals[i].d.Desired)
	}
	if total <= int64(maxTotal) {
		return wanting
	}
	slices.SortStableFunc(wanting, func(a, b int) int {
		ea, eb := &evals[a], &evals[b]
		if ea.selfHot != eb.selfHot {
			if ea.selfHot {
				return -1
			}
			return 1
		}
		pa, pb := pressure(ea), pressure(eb)
		switch {
		case pa > pb:
			return -1
		case pa < pb:
			return 1
		}
		return 0
	})
	room := int64(maxTotal) - base
	for _, i := range wanting {
		d := &evals[i].d
		floor := max(min(d.Current, evals[i].spec.MaxReplicas), evals[i].spec.MinReplicas)
		want := int64(d.Desired - floor)
		grant := max(min(want, room), 0)
		room -= grant
		if grant < want {
			d.Desired = floor + int32(grant)
			d.LimitedBy = LimitBudget
		}
	}
	return wanting
}

// pressure is how far a service's proposal exceeds its current replicas.
func pressure(e *svcEval) float64 {
	c := max(e.d.Current, 1)
	return float64(e.d.Proposal) / float64(c)
}

// reason writes the decision's one-line explanation. It appends to a
// buffer on the stack, one allocation for the line, where fmt boxed every
// argument.
func reason(e *svcEval) string {
	d := &e.d
	if !e.obs.Found {
		return "scale target not observed: holding"
	}
	var buf [256]byte
	b := buf[:0]
	switch {
	case d.Desired > d.Current:
		b = append(b, "scale up "...)
		b = strconv.AppendInt(b, int64(d.Current), 10)
		b = append(b, " → "...)
		b = strconv.AppendInt(b, int64(d.Desired), 10)
	case d.Desired < d.Current:
		b = append(b, "scale down "...)
		b = strconv.AppendInt(b, int64(d.Current), 10)
		b = append(b, " → "...)
		b = strconv.AppendInt(b, int64(d.Desired), 10)
	default:
		b = append(b, "keep "...)
		b = strconv.AppendInt(b, int64(d.Current), 10)
	}
	if driver := drivingSignal(e); driver != nil {
		b = append(b, " ("...)
		b = append(b, driver.Name...)
		b = append(b, ": "...)
		b = append(b, driver.Note...)
		b = append(b, ')')
	} else if len(e.signals) == 0 {
		b = append(b, " (no signals configured)"...)
	}
	switch {
	case d.Bottleneck && len(d.Explains) > 0:
		b = append(b, "; bottleneck explaining latency of "...)
		b = appendNameList(b, d.Explains)
	case d.Bottleneck:
		b = append(b, "; bottleneck"...)
	case len(d.Explains) > 0:
		b = append(b, "; recent bottleneck, still explaining latency of "...)
		b = appendNameList(b, d.Explains)
	}
	for _, r := range e.signals {
		if len(r.AttributedTo) > 0 {
			b = append(b, "; latency breach attributed to "...)
			b = appendNameList(b, r.AttributedTo)
			break
		}
	}
	if e.quietHeld {
		b = append(b, "; symptom breach not scaled: the mesh saw neither its own latency nor anything it calls grow"...)
	}
	if d := drivingSignal(e); e.meshNote != "" && (d == nil || d.Kind != KindMesh) {
		b = append(b, "; "...)
		b = append(b, e.meshCause...)
		b = append(b, ": "...)
		b = append(b, e.meshNote...)
	}
	if e.anyBad && d.LimitedBy != LimitHold && d.LimitedBy != LimitFallback {
		b = append(b, "; unusable: "...)
		b = appendBadSignals(b, e)
	}
	switch d.LimitedBy {
	case LimitHold:
		b = append(b, "; holding: "...)
		b = appendBadSignals(b, e)
	case LimitFallback:
		b = append(b, "; every signal unusable ("...)
		b = appendBadSignals(b, e)
		b = append(b, "): fallback "...)
		b = strconv.AppendInt(b, int64(e.spec.FallbackReplicas), 10)
	case LimitStabilization:
		b = append(b, "; stabilization window keeps it (proposal "...)
		b = strconv.AppendInt(b, int64(d.Proposal), 10)
		b = append(b, ')')
	case LimitRate:
		if e.spec.Behavior.Legacy {
			b = append(b, "; scale-up capped at max(2×"...)
			b = strconv.AppendInt(b, int64(d.Current), 10)
			b = append(b, ", 4) (proposal "...)
		} else {
			b = append(b, "; rate limited (proposal "...)
		}
		b = strconv.AppendInt(b, int64(d.Proposal), 10)
		b = append(b, ')')
	case LimitMin:
		b = append(b, "; raised to minReplicas "...)
		b = strconv.AppendInt(b, int64(e.spec.MinReplicas), 10)
	case LimitMax:
		b = append(b, "; capped at maxReplicas "...)
		b = strconv.AppendInt(b, int64(e.spec.MaxReplicas), 10)
		b = append(b, " (proposal "...)
		b = strconv.AppendInt(b, int64(d.Proposal), 10)
		b = append(b, ')')
	case LimitPinned:
		if d.Proposal > 1 {
			b = append(b, "; single-instance service pinned at 1: this bottleneck cannot be relieved by scaling (proposal "...)
			b = strconv.AppendInt(b, int64(d.Proposal), 10)
			b = append(b, ')')
		} else {
			b = append(b, "; single-instance service pinned at 1"...)
		}
	case LimitBudget:
		b = append(b, "; cluster replica budget exhausted (proposal "...)
		b = strconv.AppendInt(b, int64(d.Proposal), 10)
		b = append(b, ')')
	}
	return string(b)
}

// drivingSignal is the usable, unattributed signal with the largest
// proposal, or the first attributed one when nothing else applies.
func drivingSignal(e *svcEval) *SignalResult {
	var best *SignalResult
	for k := range e.signals {
		r := &e.signals[k]
		if r.Status != StatusOK || len(r.AttributedTo) > 0 || e.heldSymptom(k) {
			continue
		}
		if best == nil || r.Proposal > best.Proposal {
			best = r
		}
	}
	return best
}

// appendBadSignals appends the unusable signals with their statuses, or
// says there is no usable signal.
func appendBadSignals(b []byte, e *svcEval) []byte {
	n := 0
	for _, r := range e.signals {
		if r.Status != StatusOK {
			if n > 0 {
				b = append(b, ", "...)
			}
			b = append(b, r.Name...)
			b = append(b, ' ')
			b = append(b, r.Status...)
			n++
		}
	}
	if n == 0 {
		b = append(b, "no usable signal"...)
	}
	return b
}

// appendNameList appends names for a reason line, naming at most four so
// the line stays readable in a dependency graph of thousands.
func appendNameList(b []byte, names []string) []byte {
	const show = 4
	for i, name := range names[:min(len(names), show)] {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, name...)
	}
	if len(names) > show {
		b = append(b, " and "...)
		b = strconv.AppendInt(b, int64(len(names)-show), 10)
		b = append(b, " more"...)
	}
	return b
}

// queueSettle is how long after its replicas last changed a pool's
// completions per replica are not taken for its capacity: longer than the
// rate windows completions are counted over (RabbitMQ's management API
// and the preset's Prometheus rates use at most a minute).
const queueSettle = time.Minute

// unsettledPool reports whether the service's replicas changed within
// queueSettle (its current count differs from the last tick's, a scale
// event is that recent, or some pods became ready that recently) or some
// of them are not ready. A service seen for the first time with every
// replica ready counts as settled: nothing says otherwise.
func unsettledPool(prev *ServiceState, obs ServiceObservation, now time.Time) bool {
	if obs.ReadyReplicas < obs.CurrentReplicas || (prev.LastSeen && prev.LastCurrent != obs.CurrentReplicas) {
		return true
	}
	if prev.LastSeen && (prev.ReadySince == nil || now.Sub(*prev.ReadySince) < queueSettle) {
		// Pods became ready within the rate window: they did not work
		// through all of it.
		return true
	}
	for _, ev := range prev.Events {
		if now.Sub(ev.Time) < queueSettle {
			return true
		}
	}
	return false
}

// readySince carries when every replica last became ready: kept while all
// still are, set now when they become so, cleared while some are not. A
// service seen for the first time all ready is taken as ready for
// queueSettle already. Only a change allocates.
func readySince(prev *ServiceState, obs ServiceObservation, now time.Time) *time.Time {
	switch {
	case !obs.Found || obs.ReadyReplicas < obs.CurrentReplicas:
		return nil
	case prev.ReadySince != nil:
		return prev.ReadySince
	}
	t := now
	if !prev.LastSeen {
		t = now.Add(-queueSettle)
	}
	return &t
}

// queueCalm is how long every queue signal of a service must read drained
// before its scale-down stops waiting out the whole stabilization window,
// and the window it waits out instead.
const queueCalm = time.Minute

// drainedSince carries when the service's queues began to read drained:
// kept while they still do, set now when they start to, cleared when one
// does not. The burst path reads only some signals, so it keeps the
// tick's. Only a change allocates.
func drainedSince(prev *time.Time, drained, burst bool, now time.Time) *time.Time {
	switch {
	case burst:
		return prev
	case !drained:
		return nil
	case prev != nil:
		return prev
	}
	t := now
	return &t
}

// queueCalmBehavior shortens the scale-down stabilization window to
// queueCalm once every queue signal of the service has read drained for
// that long. The window is there so that a noisy signal's dips do not
// remove replicas its next peak needs; a queue that has stayed empty with
// arrivals below what the replicas take, tick after tick, is not a dip but
// evidence, and the highest recommendation of that calm minute still
// covers its peaks. The rate policies, bounds and pins apply as ever.
func queueCalmBehavior(b Behavior, since *time.Time, now time.Time) Behavior {
	if since == nil || now.Sub(*since) < queueCalm || b.ScaleDown.StabilizationWindow <= queueCalm {
		return b
	}
	b.ScaleDown.StabilizationWindow = queueCalm
	return b
}

// learnCapacity keeps, per queue signal, the per-replica throughput last
// measured while the pool was saturated; measured is this tick's by signal
// (0: none). It shares prev when nothing new was measured, so a steady
// state allocates nothing.
func learnCapacity(prev map[string]float64, sigs []SignalSpec, measured []float64) map[string]float64 {
	same := true
	for j, v := range measured {
		if v > 0 {
			if old, ok := prev[sigs[j].Name]; !ok || math.Float64bits(old) != math.Float64bits(v) {
				same = false
				break
			}
		}
	}
	if same {
		return prev
	}
	out := make(map[string]float64, len(prev)+len(measured))
	for k, v := range prev {
		out[k] = v
	}
	for j, v := range measured {
		if v > 0 {
			out[sigs[j].Name] = v
		}
	}
	return out
}
