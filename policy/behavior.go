package policy

import (
	"math"
	"time"
)

// The HPA controller's cap on a scale-up for an HPA without spec.behavior
// (horizontal.go scaleUpLimitFactor and scaleUpLimitMinimum).
const (
	legacyScaleUpLimitFactor  = 2.0
	legacyScaleUpLimitMinimum = 4.0
)

// stabilize applies the autoscaling/v2 stabilization windows to a fresh
// recommendation: a scale-up goes only as high as the lowest recommendation
// within the up window, a scale-down only as low as the highest within the
// down window. history is oldest first and does not yet hold rec.
func stabilize(b Behavior, history []Recommendation, rec, current int32, now time.Time) int32 {
	upCutoff := now.Add(-b.ScaleUp.StabilizationWindow)
	downCutoff := now.Add(-b.ScaleDown.StabilizationWindow)
	up, down := rec, rec
	for _, h := range history {
		if h.Time.After(upCutoff) {
			up = min(up, h.Replicas)
		}
		if h.Time.After(downCutoff) {
			down = max(down, h.Replicas)
		}
	}
	out := current
	if out < up {
		out = up
	}
	if out > down {
		out = down
	}
	return out
}

// legacyStabilize is the HPA controller's stabilization for an HPA without
// spec.behavior: the highest recommendation within the downscale window,
// the new one included. Unlike stabilize it does not start from the
// current count, so a recent higher recommendation also holds up a
// smaller scale-up, exactly as the controller does.
func legacyStabilize(history []Recommendation, rec int32, window time.Duration, now time.Time) int32 {
	cutoff := now.Add(-window)
	out := rec
	for _, h := range history {
		if !h.Time.Before(cutoff) {
			out = max(out, h.Replicas)
		}
	}
	return out
}

// legacyLimit is the HPA controller's convertDesiredReplicasWithRules: the
// bounds, and a scale-up cap of max(2×current, 4) that keeps a bogus usage
// report (kubernetes issue #32304) from multiplying the replicas at once.
func legacyLimit(current, desired, minR, maxR int32) (int32, Limit, ScalingLimitedReason) {
	scaleUpLimit := int32(math.Max(legacyScaleUpLimitFactor*float64(current), legacyScaleUpLimitMinimum))
	allowed, why, reason := maxR, LimitMax, ReasonTooManyReplicas
	if maxR > scaleUpLimit {
		allowed, why, reason = scaleUpLimit, LimitRate, ReasonScaleUpLimit
	}
	switch {
	case desired < minR:
		return minR, LimitMin, ReasonTooFewReplicas
	case desired > allowed:
		return allowed, why, reason
	}
	return desired, LimitNone, ReasonDesiredWithinRange
}

// rateLimit caps a change by the rate policies of its direction, counting
// the changes already made within each policy's period, and by the bounds.
// It returns the allowed count, which rule capped it, and the HPA
// controller's ScalingLimited reason (convertDesiredReplicasWithBehaviorRate).
func rateLimit(b Behavior, events []ScaleEvent, desired, current, minR, maxR int32, now time.Time) (int32, Limit, ScalingLimitedReason) {
	switch {
	case desired > current:
		limit := scaleUpLimit(b.ScaleUp, events, current, now)
		if limit < current {
			// Earlier scale-ups used up the period: no further scale-up
			// until they leave it.
			limit = current
		}
		allowed, why, reason := maxR, LimitMax, ReasonTooManyReplicas
		if allowed > limit {
			allowed, why, reason = limit, LimitRate, ReasonScaleUpLimit
		}
		if desired > allowed {
			return allowed, why, reason
		}
	case desired < current:
		limit := scaleDownLimit(b.ScaleDown, events, current, now)
		if limit > current {
			limit = current
		}
		allowed, why, reason := minR, LimitMin, ReasonTooFewReplicas
		if allowed < limit {
			allowed, why, reason = limit, LimitRate, ReasonScaleDownLimit
		}
		if desired < allowed {
			return allowed, why, reason
		}
	}
	return desired, LimitNone, ReasonDesiredWithinRange
}

// scaleUpLimit is the most replicas the scale-up policies allow. Each
// policy counts from the replicas at the start of its period, which is the
// current count less what was added and plus what was removed within it: a
// scale-down inside the period leaves room to scale back up, as in the HPA
// controller (calculateScaleUpLimitWithScalingRules).
func scaleUpLimit(rules ScalingRules, events []ScaleEvent, current int32, now time.Time) int32 {
	if rules.SelectPolicy == SelectDisabled {
		return current
	}
	if len(rules.Policies) == 0 {
		return math.MaxInt32
	}
	pick := func(a, b int32) int32 { return max(a, b) }
	result := int32(math.MinInt32)
	if rules.SelectPolicy == SelectMin {
		pick = func(a, b int32) int32 { return min(a, b) }
		result = math.MaxInt32
	}
	for _, p := range rules.Policies {
		added, removed := changesInPeriod(events, p.Period, now)
		start := current - added + removed
		var proposed int32
		switch p.Type {
		case RatePods:
			proposed = satAdd(start, p.Value)
		case RatePercent:
			// Rounded up, or a small count could never grow.
			proposed = ceilReplicas(float64(start) * (1 + float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is the fewest replicas the scale-down policies allow,
// counting each policy from the replicas at the start of its period as
// scaleUpLimit does (calculateScaleDownLimitWithBehaviors).
func scaleDownLimit(rules ScalingRules, events []ScaleEvent, current int32, now time.Time) int32 {
	if rules.SelectPolicy == SelectDisabled {
		return current
	}
	if len(rules.Policies) == 0 {
		return math.MinInt32
	}
	// For scaling down the policy allowing the biggest change gives the
	// lowest count: Max picks the minimum, Min the maximum.
	pick := func(a, b int32) int32 { return min(a, b) }
	result := int32(math.MaxInt32)
	if rules.SelectPolicy == SelectMin {
		pick = func(a, b int32) int32 { return max(a, b) }
		result = math.MinInt32
	}
	for _, p := range rules.Policies {
		added, removed := changesInPeriod(events, p.Period, now)
		start := current - added + removed
		var proposed int32
		switch p.Type {
		case RatePods:
			proposed = start - p.Value
		case RatePercent:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// changesInPeriod sums the replicas added and removed by events within
// period before now.
func changesInPeriod(events []ScaleEvent, period time.Duration, now time.Time) (added, removed int32) {
	cutoff := now.Add(-period)
	for _, e := range events {
		if !e.Time.After(cutoff) {
			continue
		}
		if d := e.To - e.From; d > 0 {
			added += d
		} else {
			removed -= d
		}
	}
	return added, removed
}

func satAdd(a, b int32) int32 {
	s := int64(a) + int64(b)
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(s)
}

// tolerances is the band around a ratio of load to target of 1 inside
// which a signal proposes no change: down below 1, up above it (the HPA
// controller's Tolerances).
type tolerances struct{ down, up float64 }

// tolerancesOf resolves a service's tolerances: each direction's own, else
// the behavior's.
func tolerancesOf(b Behavior) tolerances {
	t := tolerances{down: b.Tolerance, up: b.Tolerance}
	if b.ScaleUp.Tolerance != nil {
		t.up = *b.ScaleUp.Tolerance
	}
	if b.ScaleDown.Tolerance != nil {
		t.down = *b.ScaleDown.Tolerance
	}
	return t
}

// within reports whether ratio lies inside the band. It compares the
// ratio's distance from 1 with the direction's tolerance, which with equal
// tolerances is bit for bit the |1−ratio| ≤ tolerance test elmascale has
// always made. The HPA controller compares the ratio with 1±tolerance
// instead; the two differ only where rounding puts the ratio on the band's
// very edge (docs/hpa-conformance.md).
func (t tolerances) within(ratio float64) bool {
	if ratio >= 1 {
		return ratio-1 <= t.up
	}
	return 1-ratio <= t.down
}

// longestWindow is how far back a service's history must reach.
func (b Behavior) longestWindow() time.Duration {
	if b.Legacy {
		return b.ScaleDown.StabilizationWindow
	}
	w := max(b.ScaleUp.StabilizationWindow, b.ScaleDown.StabilizationWindow)
	for _, p := range b.ScaleUp.Policies {
		w = max(w, p.Period)
	}
	for _, p := range b.ScaleDown.Policies {
		w = max(w, p.Period)
	}
	return w
}
