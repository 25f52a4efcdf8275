package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestReasonMatchesFmt writes reasons for random decisions, every limit,
// signal status and attribution among them, and compares each with the
// fmt formatting the appending reason replaced.
func TestReasonMatchesFmt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	limits := []Limit{LimitNone, LimitHold, LimitFallback, LimitStabilization, LimitRate, LimitMin, LimitMax, LimitPinned, LimitBudget}
	statuses := []ObservationStatus{StatusOK, StatusOK, StatusMissing, StatusFailed, StatusStale, StatusInvalid}
	kinds := []SignalKind{KindUtilization, KindLatency, KindQueue, KindMesh}
	names := func() []string {
		var out []string
		for i := range rng.IntN(7) {
			out = append(out, fmt.Sprintf("svc-%d", i))
		}
		return out
	}
	n32 := func() int32 { return int32(rng.IntN(40)) - 2 }
	for range 20000 {
		spec := &ServiceSpec{Name: "web", MinReplicas: n32(), MaxReplicas: n32(), FallbackReplicas: n32()}
		spec.Behavior.Legacy = rng.IntN(2) == 0
		e := &svcEval{spec: spec, anyBad: rng.IntN(2) == 0, quietHeld: rng.IntN(4) == 0}
		e.obs.Found = rng.IntN(10) != 0
		for j := range rng.IntN(4) {
			r := SignalResult{Name: fmt.Sprintf("sig%d", j), Kind: kinds[rng.IntN(len(kinds))], Status: statuses[rng.IntN(len(statuses))],
				Proposal: n32(), Note: fmt.Sprintf("note %d", rng.IntN(100)), Breach: rng.IntN(2) == 0}
			if rng.IntN(3) == 0 {
				r.AttributedTo = names()
			}
			e.signals = append(e.signals, r)
			spec.Signals = append(spec.Signals, SignalSpec{Name: r.Name, Kind: r.Kind})
		}
		if rng.IntN(3) == 0 {
			e.meshCause, e.meshNote = CauseQueueing, "own latency grew"
		}
		e.d = Decision{Current: n32(), Desired: n32(), Proposal: n32(), Bottleneck: rng.IntN(2) == 0,
			Explains: names(), LimitedBy: limits[rng.IntN(len(limits))]}
		if got, want := reason(e), reasonWithFmt(e); got != want {
			t.Fatalf("reason %q, fmt %q", got, want)
		}
	}
}

// reasonWithFmt is how reasons were written with fmt, the reference the
// appending reason must match byte for byte.
func reasonWithFmt(e *svcEval) string {
	d := &e.d
	var b strings.Builder
	b.Grow(192)
	switch {
	case !e.obs.Found:
		return "scale target not observed: holding"
	case d.Desired > d.Current:
		fmt.Fprintf(&b, "scale up %d → %d", d.Current, d.Desired)
	case d.Desired < d.Current:
		fmt.Fprintf(&b, "scale down %d → %d", d.Current, d.Desired)
	default:
		fmt.Fprintf(&b, "keep %d", d.Current)
	}
	if driver := drivingSignal(e); driver != nil {
		fmt.Fprintf(&b, " (%s: %s)", driver.Name, driver.Note)
	} else if len(e.signals) == 0 {
		b.WriteString(" (no signals configured)")
	}
	switch {
	case d.Bottleneck && len(d.Explains) > 0:
		fmt.Fprintf(&b, "; bottleneck explaining latency of %s", nameListWithFmt(d.Explains))
	case d.Bottleneck:
		b.WriteString("; bottleneck")
	case len(d.Explains) > 0:
		fmt.Fprintf(&b, "; recent bottleneck, still explaining latency of %s", nameListWithFmt(d.Explains))
	}
	for _, r := range e.signals {
		if len(r.AttributedTo) > 0 {
			fmt.Fprintf(&b, "; latency breach attributed to %s", nameListWithFmt(r.AttributedTo))
			break
		}
	}
	if e.quietHeld {
		b.WriteString("; symptom breach not scaled: the mesh saw neither its own latency nor anything it calls grow")
	}
	if d := drivingSignal(e); e.meshNote != "" && (d == nil || d.Kind != KindMesh) {
		fmt.Fprintf(&b, "; %s: %s", e.meshCause, e.meshNote)
	}
	if e.anyBad && d.LimitedBy != LimitHold && d.LimitedBy != LimitFallback {
		fmt.Fprintf(&b, "; unusable: %s", badSignalsWithFmt(e))
	}
	switch d.LimitedBy {
	case LimitHold:
		fmt.Fprintf(&b, "; holding: %s", badSignalsWithFmt(e))
	case LimitFallback:
		fmt.Fprintf(&b, "; every signal unusable (%s): fallback %d", badSignalsWithFmt(e), e.spec.FallbackReplicas)
	case LimitStabilization:
		fmt.Fprintf(&b, "; stabilization window keeps it (proposal %d)", d.Proposal)
	case LimitRate:
		if e.spec.Behavior.Legacy {
			fmt.Fprintf(&b, "; scale-up capped at max(2×%d, 4) (proposal %d)", d.Current, d.Proposal)
		} else {
			fmt.Fprintf(&b, "; rate limited (proposal %d)", d.Proposal)
		}
	case LimitMin:
		fmt.Fprintf(&b, "; raised to minReplicas %d", e.spec.MinReplicas)
	case LimitMax:
		fmt.Fprintf(&b, "; capped at maxReplicas %d (proposal %d)", e.spec.MaxReplicas, d.Proposal)
	case LimitPinned:
		if d.Proposal > 1 {
			fmt.Fprintf(&b, "; single-instance service pinned at 1: this bottleneck cannot be relieved by scaling (proposal %d)", d.Proposal)
		} else {
			b.WriteString("; single-instance service pinned at 1")
		}
	case LimitBudget:
		fmt.Fprintf(&b, "; cluster replica budget exhausted (proposal %d)", d.Proposal)
	}
	return b.String()
}

func badSignalsWithFmt(e *svcEval) string {
	var parts []string
	for _, r := range e.signals {
		if r.Status != StatusOK {
			parts = append(parts, fmt.Sprintf("%s %s", r.Name, r.Status))
		}
	}
	if len(parts) == 0 {
		return "no usable signal"
	}
	return strings.Join(parts, ", ")
}

// nameListWithFmt joins names for a reason line, naming at most four so the line
// stays readable in a dependency graph of thousands.
func nameListWithFmt(names []string) string {
	const show = 4
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}
