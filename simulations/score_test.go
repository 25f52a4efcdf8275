package simulations

import (
	"testing"
	"time"
)

// Verifies that relievable violation seconds are judged SLO by SLO: a
// window counts when the run missed an SLO that the reference met in it,
// even if the reference missed another SLO in that window, and does not
// count when every SLO the run missed the reference missed too.
func TestRelievableIsPerSLO(t *testing.T) {
	series := func(missed ...[]int32) Series {
		s := Series{Step: 10 * time.Second}
		for _, m := range missed {
			s.Violating = append(s.Violating, len(m) > 0)
			s.Missed = append(s.Missed, m)
		}
		return s
	}
	ref := &Result{Policy: PolicyOracle, Series: series(nil, []int32{1}, []int32{1}, []int32{0, 2}, nil)}
	run := &Result{Policy: PolicyHPA, Series: series(
		[]int32{0},    // the reference met everything: counts
		[]int32{1},    // only what the reference missed too: does not
		[]int32{0, 1}, // 0 the reference met, beside its own 1: counts
		[]int32{2},    // within what the reference missed: does not
		nil,
		[]int32{3}, // past the reference's windows: counts
	)}
	if !ScoreRelievable([]*Result{ref, run}) {
		t.Fatal("no reference found")
	}
	if got := *run.Scores.RelievableViolationSeconds; got != 30 {
		t.Errorf("relievable %g s, want 30 (windows 0, 2 and 5)", got)
	}
	if got := *ref.Scores.RelievableViolationSeconds; got != 0 {
		t.Errorf("the reference's own relievable %g s, want 0", got)
	}
	// A series with no SLO-by-SLO record is judged by whole windows.
	bare := &Result{Policy: PolicyKEDA, Series: Series{Step: 10 * time.Second, Violating: []bool{true, true, false, true}}}
	ScoreRelievable([]*Result{ref, bare})
	if got := *bare.Scores.RelievableViolationSeconds; got != 10 {
		t.Errorf("relievable of a series without Missed %g s, want 10 (window 0 only)", got)
	}
}
