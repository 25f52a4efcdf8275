package policy

import (
	"math"
	"time"
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

// rateLimit caps a change by the rate policies of its direction, counting
// the changes already made within each policy's period, and by the bounds.
// It returns the allowed count and which rule capped it.
func rateLimit(b Behavior, events []ScaleEvent, desired, current, minR, maxR int32, now time.Time) (int32, Limit) {
	switch {
	case desired > current:
		limit := scaleUpLimit(b.ScaleUp, events, current, now)
		if limit < current {
			limit = current
		}
		allowed, why := maxR, LimitMax
		if allowed > limit {
			allowed, why = limit, LimitRate
		}
		if desired > allowed {
			return allowed, why
		}
	case desired < current:
		limit := scaleDownLimit(b.ScaleDown, events, current, now)
		if limit > current {
			limit = current
		}
		allowed, why := minR, LimitMin
		if allowed < limit {
			allowed, why = limit, LimitRate
		}
		if desired < allowed {
			return allowed, why
		}
	}
	return desired, LimitNone
}

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
		added := changedInPeriod(events, p.Period, now, true)
		start := current - added
		var proposed int32
		switch p.Type {
		case RatePods:
			proposed = satAdd(start, p.Value)
		case RatePercent:
			proposed = ceilReplicas(float64(start) * (1 + float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

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
		removed := changedInPeriod(events, p.Period, now, false)
		start := current + removed
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

// changedInPeriod sums the replicas added (up) or removed (!up) by events
// within period before now.
func changedInPeriod(events []ScaleEvent, period time.Duration, now time.Time, up bool) int32 {
	cutoff := now.Add(-period)
	var sum int32
	for _, e := range events {
		if !e.Time.After(cutoff) {
			continue
		}
		d := e.To - e.From
		if up && d > 0 {
			sum += d
		} else if !up && d < 0 {
			sum -= d
		}
	}
	return sum
}

func satAdd(a, b int32) int32 {
	s := int64(a) + int64(b)
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(s)
}

// longestWindow is how far back a service's history must reach.
func (b Behavior) longestWindow() time.Duration {
	w := max(b.ScaleUp.StabilizationWindow, b.ScaleDown.StabilizationWindow)
	for _, p := range b.ScaleUp.Policies {
		w = max(w, p.Period)
	}
	for _, p := range b.ScaleDown.Policies {
		w = max(w, p.Period)
	}
	return w
}
