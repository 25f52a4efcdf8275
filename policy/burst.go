package policy

import "time"

// DecideBurst is the burst path: between ticks it decides, from a snapshot
// of the fastest signals, for the services whose queue signals jumped. A
// service bursts when it has a Burst spec, its target was found, it is not
// pinned, and one of its usable queue signals asks for more replicas than
// it runs and for at least Threshold times as many. Like Knative's panic
// mode it only scales up: the bursting services go through the same
// stabilization, rate policies, bounds and budget as in Decide, but a
// result below the current count keeps the current count, and the next
// tick decides everything else. Its decisions' reasons start "burst: ".
//
// The plan holds the bursting services only (none: nothing to do); the
// state is prev with their histories carried forward, so the next tick
// counts the burst's scale-ups against the rate policies and keeps its
// recommendations in the stabilization windows. A missing, failed, stale
// or invalid queue observation never makes a service burst. Other signals
// in the snapshot are not read: the burst path watches queues only.
func DecideBurst(spec Spec, snap Snapshot, prev State, now time.Time) (Plan, State) {
	return decide(spec, snap, prev, now, true)
}

// isBurstSignal reports whether the burst path watches a signal: queue
// signals that are not symptoms of a dependency.
func isBurstSignal(sig *SignalSpec) bool { return sig.Kind == KindQueue && !sig.Symptom }

// burstCandidate reports whether a service may burst at all.
func burstCandidate(s *ServiceSpec, obs ServiceObservation) bool {
	if s.Burst == nil || s.Pinned || !obs.Found {
		return false
	}
	for i := range s.Signals {
		if isBurstSignal(&s.Signals[i]) {
			return true
		}
	}
	return false
}

// markBursting leaves only the bursting candidates unfixed and reports
// whether there is any.
func markBursting(evals []svcEval) bool {
	any := false
	for i := range evals {
		e := &evals[i]
		if e.fixed {
			continue
		}
		cur := e.obs.CurrentReplicas
		threshold := float64(cur) * e.spec.Burst.Threshold
		hot := false
		for _, r := range e.signals {
			if r.Status == StatusOK && r.Proposal > cur && float64(r.Proposal) >= threshold {
				hot = true
			}
		}
		e.fixed = !hot
		any = any || hot
	}
	return any
}
