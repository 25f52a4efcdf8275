package scaler

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/elmascale/elmascale/policy"
)

// ReasonRecommended marks a dry-run recommendation on its target, for
// `kubectl describe` and `kubectl get events --field-selector reason=Recommended`.
const ReasonRecommended = "Recommended"

// RecommendEventInterval is the least time between two Recommended Events
// on one target, except that a recommendation turning round (down after
// up, or up after down) may be told once more inside the interval.
const RecommendEventInterval = 5 * time.Minute

// recommendations remembers, per target, the last recommendation told as
// an Event. Its zero value is ready to use. An entry is a few words per
// target the config ever named, so entries are never pruned.
type recommendations struct {
	mu   sync.Mutex
	last map[string]recommendationEvent // by kind/name
}

// recommendationEvent is what was last told about one target.
type recommendationEvent struct {
	desired int32
	dir     int       // +1 up, -1 down, from the count told before
	at      time.Time // when it was told
	turnAt  time.Time // when a turn round last passed inside the interval
}

// nextRecommendationEvent decides whether a recommendation of desired
// replicas, for a target running current, is worth an Event, given the
// last one told (ok false: none yet). A recommendation equal to the last
// one told is not news; before anything was told the reference is what
// runs, so a steady cluster writes nothing. A flapping signal would
// otherwise write an Event every tick into the Event store (and etcd): at
// most one per interval is told, plus one when the direction turns round.
func nextRecommendationEvent(last recommendationEvent, ok bool, current, desired int32, now time.Time) (recommendationEvent, bool) {
	ref := current
	if ok {
		ref = last.desired
	}
	if desired == ref {
		return last, false
	}
	dir := 1
	if desired < ref {
		dir = -1
	}
	next := recommendationEvent{desired: desired, dir: dir, at: now, turnAt: last.turnAt}
	switch {
	case !ok || now.Sub(last.at) >= RecommendEventInterval:
		return next, true
	case dir != last.dir && (last.turnAt.IsZero() || now.Sub(last.turnAt) >= RecommendEventInterval):
		next.turnAt = now
		return next, true
	}
	return last, false
}

// recommend records a Normal Recommended Event on the target when the
// dry-run recommendation for it changed, rate-limited per target.
func (s *Scaler) recommend(t target, d policy.Decision) {
	if t.obj == nil {
		return
	}
	key := t.kind + "/" + t.name
	s.recs.mu.Lock()
	if s.recs.last == nil {
		s.recs.last = map[string]recommendationEvent{}
	}
	last, ok := s.recs.last[key]
	next, emit := nextRecommendationEvent(last, ok, d.Current, d.Desired, s.opts.Now())
	if emit {
		s.recs.last[key] = next
	}
	s.recs.mu.Unlock()
	if emit {
		s.events.Eventf(t.obj, corev1.EventTypeNormal, ReasonRecommended,
			"dry-run recommends replicas %d → %d (nothing written): %s", d.Current, d.Desired, d.Reason)
	}
}
