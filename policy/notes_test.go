package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// renderWithFmt is how notes were written with fmt, the reference the
// appending render must match byte for byte.
func renderWithFmt(a *noteArgs) string {
	switch a.kind {
	case noteText:
		return a.s
	case noteStale:
		return fmt.Sprintf("sample is %s old (stale after %s)", time.Duration(a.n[0]), time.Duration(a.n[1]))
	case noteUtilWithin:
		return fmt.Sprintf("%s%% of %s request, target %d%%, within tolerance", wholeNum(a.fl(0)), a.s, a.n[0])
	case noteUtil:
		return fmt.Sprintf("%s%% of %s request over %d ready pods, target %d%%", wholeNum(a.fl(0)), a.s, int(a.n[1]), a.n[0])
	case notePodsWithin:
		return fmt.Sprintf("%.4g per pod, target %.4g, within tolerance", a.fl(0), a.fl(1))
	case notePods:
		return fmt.Sprintf("%.4g per pod over %d ready pods, target %.4g", a.fl(0), int(a.n[1]), a.fl(1))
	case noteUtilRebalanced:
		return fmt.Sprintf("%s%% of %s request (%s%% counting %d missing and %d unready pods), target %d%%",
			wholeNum(a.fl(0)), a.s, wholeNum(a.fl(1)), int(a.n[1]), int(a.n[2]), a.n[0])
	case notePodsRebalanced:
		return fmt.Sprintf("%.4g per pod (%.4g counting %d missing and %d unready pods), target %.4g",
			a.fl(0), a.fl(1), int(a.n[1]), int(a.n[2]), a.fl(2))
	case noteQueueStart:
		return fmt.Sprintf("backlog %s with no consumers: start one", fixedNum(a.fl(0), 0))
	case noteQueue:
		s := fmt.Sprintf("backlog %s, arrivals %s/s, %s throughput %s/s per replica: %s replicas drain it in %s",
			fixedNum(a.fl(0), 0), fixedNum(a.fl(1), 2), a.s, fixedNum(a.fl(2), 2), fixedNum(a.fl(3), 2), time.Duration(a.n[0]))
		if a.n[1] == 1 {
			s += "; messages wait and the backlog is not shrinking: no scale-down"
		}
		return s
	case noteLatency:
		return fmt.Sprintf("p%g latency %s vs SLO %s", a.fl(0)*100, fmtSeconds(a.fl(1)), time.Duration(a.n[0]))
	case notePerReplicaIn:
		return fmt.Sprintf("%.4g per replica, target %.4g (within tolerance)", a.fl(0), a.fl(1))
	case notePerReplica:
		return fmt.Sprintf("total %.4g at %.4g per replica", a.fl(0), a.fl(1))
	case noteObject:
		return fmt.Sprintf("value %.4g vs target %.4g", a.fl(0), a.fl(1))
	}
	return ""
}

// TestNoteRenderMatchesFmt renders every kind of note from edge and random
// values and compares it with the fmt formatting it replaced.
func TestNoteRenderMatchesFmt(t *testing.T) {
	edges := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 0.99995, 9.9995, 99.995, 999.95, 9999.5, 12345.678,
		bigNum - 1, bigNum, -bigNum, 1e21, 1e-5, 1e-300, 5e-324, math.MaxFloat64, -math.MaxFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), 1e18, 9.2233720368547758e18, -9.3e18, 123.456, 0.0001234}
	ints := []int64{0, 1, -1, 7, 70, 100, 1 << 31, math.MaxInt64, math.MinInt64,
		int64(time.Second), int64(90 * time.Second), int64(1500 * time.Millisecond)}
	rng := rand.New(rand.NewPCG(1, 2))
	pickF := func() float64 {
		switch rng.IntN(4) {
		case 0:
			return edges[rng.IntN(len(edges))]
		case 1:
			return rng.Float64() * 200
		case 2:
			return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
		}
		return math.Float64frombits(rng.Uint64())
	}
	pickN := func() int64 {
		if rng.IntN(2) == 0 {
			return ints[rng.IntN(len(ints))]
		}
		return rng.Int64N(1<<40) - 1<<39
	}
	for kind := noteText; kind <= noteObject; kind++ {
		for range 3000 {
			a := noteArgs{kind: kind, s: "cpu"}
			a.setF(pickF(), pickF(), pickF(), pickF())
			a.n = [3]int64{pickN(), pickN(), pickN()}
			if got, want := a.render(), renderWithFmt(&a); got != want {
				t.Fatalf("kind %d, args %+v: render %q, fmt %q", kind, a, got, want)
			}
		}
	}
}

// BenchmarkNoteRender renders the notes a changing tick writes most: a
// utilization, a latency and a queue note.
func BenchmarkNoteRender(b *testing.B) {
	notes := []noteArgs{
		{kind: noteUtil, s: "cpu", n: [3]int64{70, 3}},
		{kind: noteLatency, n: [3]int64{int64(500 * time.Millisecond)}},
		{kind: noteQueue, s: "measured", n: [3]int64{int64(time.Minute)}},
	}
	notes[0].setF(83)
	notes[1].setF(0.95, 0.234)
	notes[2].setF(412, 10, 5.25, 3.4)
	b.ReportAllocs()
	for b.Loop() {
		for i := range notes {
			_ = notes[i].render()
		}
	}
}
