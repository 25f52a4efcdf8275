package policy

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// noteKind names the sentence a signal's note is written with.
type noteKind uint8

const (
	noteEmpty          noteKind = iota
	noteText                    // s as it is
	noteStale                   // n0 age, n1 staleAfter
	noteUtilWithin              // f0 value, n0 target percent, s resource
	noteUtil                    // f0 value, n0 target percent, n1 ready pods, s resource
	notePodsWithin              // f0 value, f1 target
	notePods                    // f0 value, f1 target, n1 ready pods
	noteUtilRebalanced          // f0 value, f1 rebalanced value, n0 target percent, n1 missing, n2 unready, s resource
	notePodsRebalanced          // f0 value, f1 rebalanced value, f2 target, n1 missing, n2 unready
	noteQueueStart              // f0 backlog
	noteQueue                   // f0 backlog, f1 arrivals, f2 per-replica throughput, f3 replicas required, n0 drain time, s source
	noteLatency                 // f0 quantile, f1 seconds, n0 SLO
	notePerReplicaIn            // f0 value, f1 target
	notePerReplica              // f0 total, f1 target
	noteObject                  // f0 value, f1 target
)

// noteArgs is everything a signal's note is written from. It is
// comparable, so a note whose inputs did not change since the last tick is
// reused instead of formatted again: formatting notes was most of what a
// steady tick cost. Floats are kept as their bits so that equal keys format
// equally (0 and -0 compare equal as floats but print differently).
type noteArgs struct {
	kind noteKind
	s    string
	f    [4]uint64
	n    [3]int64
}

func (a *noteArgs) setF(vs ...float64) {
	for i, v := range vs {
		a.f[i] = math.Float64bits(v)
	}
}

func (a *noteArgs) fl(i int) float64 { return math.Float64frombits(a.f[i]) }

func textNote(s string) noteArgs { return noteArgs{kind: noteText, s: s} }

// render writes the note. Each sentence is the one the signal has always
// given; only when it is written changed.
func (a *noteArgs) render() string {
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
		return fmt.Sprintf("backlog %s, arrivals %s/s, %s throughput %s/s per replica: %s replicas drain it in %s",
			fixedNum(a.fl(0), 0), fixedNum(a.fl(1), 2), a.s, fixedNum(a.fl(2), 2), fixedNum(a.fl(3), 2), time.Duration(a.n[0]))
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

// noteMemo remembers one signal's last note and what it was written from.
type noteMemo struct {
	args noteArgs
	text string
}

// note returns the note for a, reusing the remembered one when a is what
// it was written from. m may be nil.
func (m *noteMemo) note(a *noteArgs) string {
	if a.kind == noteEmpty {
		return ""
	}
	if a.kind == noteText {
		return a.s
	}
	if m != nil && m.args == *a {
		return m.text
	}
	s := a.render()
	if m != nil {
		m.args, m.text = *a, s
	}
	return s
}

// bigNum is the magnitude from which a note's number is written with four
// significant digits and an exponent: a backlog of 1e308 is valid input,
// and written out in full it was a 309-digit number in a one-line reason.
const bigNum = 1e6

// fixedNum writes v with at most decimals decimals, fewer as its whole part
// grows, so that it carries about four significant digits (19.77, 123.5,
// 4821) but never drops whole digits below bigNum; from there on, and for
// values that are not finite, four significant digits in exponent form.
func fixedNum(v float64, decimals int) string {
	a := math.Abs(v)
	if !(a < bigNum) {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	if a >= 1 {
		decimals = min(decimals, max(0, 3-int(math.Floor(math.Log10(a)))))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// wholeNum writes v's whole part (a percentage, say, as the HPA truncates
// it) up to bigNum, and four significant digits beyond, where converting
// to an integer would overflow.
func wholeNum(v float64) string {
	if !(math.Abs(v) < bigNum) {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatInt(int64(v), 10)
}
