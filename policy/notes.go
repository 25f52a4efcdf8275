package policy

import (
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
	noteQueue                   // f0 backlog, f1 arrivals, f2 per-replica throughput, f3 replicas required, n0 drain time, s source; n1 = 1: held, messages waiting and not shrinking
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
// given; only when it is written changed. The sentences are appended to a
// buffer on the stack rather than formatted by fmt, which boxed every
// argument and cost most of a tick whose values all moved.
func (a *noteArgs) render() string {
	var buf [256]byte
	return string(a.appendTo(buf[:0]))
}

// g4 appends v as %.4g writes it.
func g4(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'g', 4, 64) }

func (a *noteArgs) appendTo(b []byte) []byte {
	switch a.kind {
	case noteText:
		return append(b, a.s...)
	case noteStale:
		b = append(b, "sample is "...)
		b = append(b, time.Duration(a.n[0]).String()...)
		b = append(b, " old (stale after "...)
		b = append(b, time.Duration(a.n[1]).String()...)
		return append(b, ')')
	case noteUtilWithin:
		b = appendWholeNum(b, a.fl(0))
		b = append(b, "% of "...)
		b = append(b, a.s...)
		b = append(b, " request, target "...)
		b = strconv.AppendInt(b, a.n[0], 10)
		return append(b, "%, within tolerance"...)
	case noteUtil:
		b = appendWholeNum(b, a.fl(0))
		b = append(b, "% of "...)
		b = append(b, a.s...)
		b = append(b, " request over "...)
		b = strconv.AppendInt(b, int64(int(a.n[1])), 10)
		b = append(b, " ready pods, target "...)
		b = strconv.AppendInt(b, a.n[0], 10)
		return append(b, '%')
	case notePodsWithin:
		b = g4(b, a.fl(0))
		b = append(b, " per pod, target "...)
		b = g4(b, a.fl(1))
		return append(b, ", within tolerance"...)
	case notePods:
		b = g4(b, a.fl(0))
		b = append(b, " per pod over "...)
		b = strconv.AppendInt(b, int64(int(a.n[1])), 10)
		b = append(b, " ready pods, target "...)
		return g4(b, a.fl(1))
	case noteUtilRebalanced:
		b = appendWholeNum(b, a.fl(0))
		b = append(b, "% of "...)
		b = append(b, a.s...)
		b = append(b, " request ("...)
		b = appendWholeNum(b, a.fl(1))
		b = append(b, "% counting "...)
		b = strconv.AppendInt(b, int64(int(a.n[1])), 10)
		b = append(b, " missing and "...)
		b = strconv.AppendInt(b, int64(int(a.n[2])), 10)
		b = append(b, " unready pods), target "...)
		b = strconv.AppendInt(b, a.n[0], 10)
		return append(b, '%')
	case notePodsRebalanced:
		b = g4(b, a.fl(0))
		b = append(b, " per pod ("...)
		b = g4(b, a.fl(1))
		b = append(b, " counting "...)
		b = strconv.AppendInt(b, int64(int(a.n[1])), 10)
		b = append(b, " missing and "...)
		b = strconv.AppendInt(b, int64(int(a.n[2])), 10)
		b = append(b, " unready pods), target "...)
		return g4(b, a.fl(2))
	case noteQueueStart:
		b = append(b, "backlog "...)
		b = appendFixedNum(b, a.fl(0), 0)
		return append(b, " with no consumers: start one"...)
	case noteQueue:
		b = append(b, "backlog "...)
		b = appendFixedNum(b, a.fl(0), 0)
		b = append(b, ", arrivals "...)
		b = appendFixedNum(b, a.fl(1), 2)
		b = append(b, "/s, "...)
		b = append(b, a.s...)
		b = append(b, " throughput "...)
		b = appendFixedNum(b, a.fl(2), 2)
		b = append(b, "/s per replica: "...)
		b = appendFixedNum(b, a.fl(3), 2)
		b = append(b, " replicas drain it in "...)
		b = append(b, time.Duration(a.n[0]).String()...)
		if a.n[1] == 1 {
			b = append(b, "; messages wait and the backlog is not shrinking: no scale-down"...)
		}
		return b
	case noteLatency:
		b = append(b, 'p')
		b = strconv.AppendFloat(b, a.fl(0)*100, 'g', -1, 64)
		b = append(b, " latency "...)
		b = append(b, fmtSeconds(a.fl(1))...)
		b = append(b, " vs SLO "...)
		return append(b, time.Duration(a.n[0]).String()...)
	case notePerReplicaIn:
		b = g4(b, a.fl(0))
		b = append(b, " per replica, target "...)
		b = g4(b, a.fl(1))
		return append(b, " (within tolerance)"...)
	case notePerReplica:
		b = append(b, "total "...)
		b = g4(b, a.fl(0))
		b = append(b, " at "...)
		b = g4(b, a.fl(1))
		return append(b, " per replica"...)
	case noteObject:
		b = append(b, "value "...)
		b = g4(b, a.fl(0))
		b = append(b, " vs target "...)
		return g4(b, a.fl(1))
	}
	return b
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
	var buf [32]byte
	return string(appendFixedNum(buf[:0], v, decimals))
}

// appendFixedNum appends fixedNum(v, decimals) to b.
func appendFixedNum(b []byte, v float64, decimals int) []byte {
	a := math.Abs(v)
	if !(a < bigNum) {
		return strconv.AppendFloat(b, v, 'g', 4, 64)
	}
	if a >= 1 {
		decimals = min(decimals, max(0, 3-int(math.Floor(math.Log10(a)))))
	}
	return strconv.AppendFloat(b, v, 'f', decimals, 64)
}

// wholeNum writes v's whole part (a percentage, say, as the HPA truncates
// it) up to bigNum, and four significant digits beyond, where converting
// to an integer would overflow.
func wholeNum(v float64) string {
	var buf [32]byte
	return string(appendWholeNum(buf[:0], v))
}

// appendWholeNum appends wholeNum(v) to b.
func appendWholeNum(b []byte, v float64) []byte {
	if !(math.Abs(v) < bigNum) {
		return strconv.AppendFloat(b, v, 'g', 4, 64)
	}
	return strconv.AppendInt(b, int64(v), 10)
}
