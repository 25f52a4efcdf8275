package simulations

import "math"

// Event kinds, kept in the top bits of event.a.
const (
	evDone     uint32 = iota // request a finished its own work
	evPodReady               // pod b of service a became ready
	evTimeout                // request a's call b timed out
	evNodeAdd                // a node the cluster autoscaler added is ready

	evKindShift = 30
	evValueMask = 1<<evKindShift - 1
)

// event is one scheduled happening, 16 bytes. Events at equal times come
// out in an order fixed by the heap's history, so runs stay deterministic
// without a sequence number.
type event struct {
	t float64
	a uint32 // kind << evKindShift | value
	b int32
}

// eventHeap is a 4-ary min-heap by time, written out by hand so that
// pushes and pops neither allocate nor go through interfaces; four
// children per node halve the depth of a binary heap and keep siblings on
// one cache line.
type eventHeap struct {
	ev []event
}

func (h *eventHeap) push(t float64, kind uint32, a, b int32) {
	e := event{t: t, a: kind<<evKindShift | uint32(a), b: b}
	h.ev = append(h.ev, e)
	ev := h.ev
	i := len(ev) - 1
	for i > 0 {
		p := (i - 1) / 4
		if ev[p].t <= e.t {
			break
		}
		ev[i] = ev[p]
		i = p
	}
	ev[i] = e
}

// peek returns the earliest event time, or +Inf when empty.
func (h *eventHeap) peek() float64 {
	if len(h.ev) == 0 {
		return math.Inf(1)
	}
	return h.ev[0].t
}

func (h *eventHeap) pop() event {
	ev := h.ev
	top := ev[0]
	n := len(ev) - 1
	e := ev[n]
	ev = ev[:n]
	h.ev = ev
	i := 0
	for {
		c := 4*i + 1
		if c+4 > n {
			break
		}
		// The earliest of four children by a tournament the compiler
		// turns into conditional moves: which child wins is a coin toss
		// to the branch predictor. Ties go to the lower index, as a scan
		// in order would give them.
		cs := ev[c : c+4 : c+4]
		a := bit(cs[1].t < cs[0].t)
		b := 2 | bit(cs[3].t < cs[2].t)
		a ^= (a ^ b) & -bit(cs[b].t < cs[a].t)
		if e.t <= cs[a].t {
			ev[i] = e
			return top
		}
		ev[i] = cs[a]
		i = c + a
	}
	// The last parent may have fewer than four children.
	if c := 4*i + 1; c < n {
		m := c
		for j := c + 1; j < n; j++ {
			if ev[j].t < ev[m].t {
				m = j
			}
		}
		if ev[m].t < e.t {
			ev[i] = ev[m]
			i = m
		}
	}
	if n > 0 {
		ev[i] = e
	}
	return top
}

// bit is 1 for true and 0 for false, computed without a branch.
func bit(c bool) int {
	var x int
	if c {
		x = 1
	}
	return x
}

// ring is a FIFO of request ids that grows by doubling.
type ring struct {
	buf        []int32
	head, size int
}

func (r *ring) push(v int32) {
	if r.size == len(r.buf) {
		n := max(16, 2*len(r.buf))
		nb := make([]int32, n)
		for i := 0; i < r.size; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring) pop() int32 {
	v := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return v
}

func (r *ring) front() int32 { return r.buf[r.head] }

// logHist counts positive values in buckets 1/32 of an octave wide (about
// 2.2% relative width), from 2^-14 s to 2^14 s. Its index is read off the
// float's exponent and top mantissa bits, so recording costs a few
// instructions; lo and hi bound the buckets in use so reading and
// clearing touch only those.
type logHist struct {
	n      uint64
	lo, hi int
	b      [lhBuckets]uint32
}

const (
	lhSub     = 5
	lhMinExp  = -14
	lhMaxExp  = 14
	lhBuckets = (lhMaxExp - lhMinExp) << lhSub
)

func lhIndex(x float64) int {
	bits := math.Float64bits(x)
	e := int(bits>>52&0x7ff) - 1023
	switch {
	case e < lhMinExp:
		return 0
	case e >= lhMaxExp:
		return lhBuckets - 1
	}
	return (e-lhMinExp)<<lhSub | int(bits>>(52-lhSub)&(1<<lhSub-1))
}

// lhMid is the geometric middle of bucket i.
func lhMid(i int) float64 {
	e := i>>lhSub + lhMinExp
	m := float64(i & (1<<lhSub - 1))
	lo := math.Ldexp(1+m/(1<<lhSub), e)
	hi := math.Ldexp(1+(m+1)/(1<<lhSub), e)
	return math.Sqrt(lo * hi)
}

func (h *logHist) add(x float64) { h.addAt(lhIndex(x)) }

// addAt counts a value whose bucket is i, for callers that need the
// bucket themselves.
func (h *logHist) addAt(i int) {
	if h.n == 0 {
		h.lo, h.hi = i, i
	} else if i < h.lo {
		h.lo = i
	} else if i > h.hi {
		h.hi = i
	}
	h.b[i]++
	h.n++
}

// quantile returns the q-quantile (nearest rank), or NaN when empty.
func (h *logHist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var c uint64
	for i := h.lo; i <= h.hi; i++ {
		c += uint64(h.b[i])
		if c >= rank {
			return lhMid(i)
		}
	}
	return lhMid(h.hi)
}

func (h *logHist) reset() {
	if h.n > 0 {
		clear(h.b[h.lo : h.hi+1])
	}
	h.n, h.lo, h.hi = 0, 0, 0
}

// merge adds o into h.
func (h *logHist) merge(o *logHist) {
	if o.n == 0 {
		return
	}
	if h.n == 0 {
		h.lo, h.hi = o.lo, o.hi
	} else {
		h.lo, h.hi = min(h.lo, o.lo), max(h.hi, o.hi)
	}
	for i := o.lo; i <= o.hi; i++ {
		h.b[i] += o.b[i]
	}
	h.n += o.n
}

// copyFrom makes h a copy of o, touching only the buckets in use.
func (h *logHist) copyFrom(o *logHist) {
	h.reset()
	h.merge(o)
}
