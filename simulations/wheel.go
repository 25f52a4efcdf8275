package simulations

import "math/bits"

// Timing wheel geometry: buckets 1/1024 s wide (a power of two, so a
// time's bucket is exact), 4096 of them, a horizon of 4 s.
const (
	wheelRes   = 1024
	wheelSize  = 4096
	wheelMask  = wheelSize - 1
	wheelWords = wheelSize / 64
)

// wnode is an event in a bucket's list.
type wnode struct {
	event
	next int32
}

// eventQueue orders the simulator's events by time. Nearly all of them
// are the ends of requests' own work, due within a second or two, so they
// go to a timing wheel: a bucket per 1/1024 s over the next 4 s, each a
// short unsorted list, and a bitmap of the buckets in use. A push is a
// multiplication and a prepend; a pop finds the next bucket in use from
// the bitmap and takes its earliest event. Events due further out (pod
// start-ups, timeouts, node additions) wait in a heap.
//
// All pending events are due no earlier than the simulated time, and
// cur is the bucket of that time or earlier, so the wheel only holds
// buckets cur … cur+wheelSize-1 and a slot never holds two of them. Events
// at equal times come out in an order fixed by the queue's history.
type eventQueue struct {
	cur   int64 // absolute bucket number the scan starts from
	n     int   // events in the wheel
	head  [wheelSize]int32
	used  [wheelWords]uint64
	nodes []wnode
	free  int32 // free list through wnode.next, -1 when empty
	far   eventHeap
	// next caches where the earliest wheel event is (its bucket, its
	// time, the node before it in its list or -1), valid while nextOK.
	nextBucket         int64
	nextT              float64
	nextSlot, nextPrev int32
	nextOK             bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{free: -1}
	for i := range q.head {
		q.head[i] = -1
	}
	q.nodes = make([]wnode, 0, 1<<12)
	q.far.ev = make([]event, 0, 1<<8)
	return q
}

func wheelBucket(t float64) int64 { return int64(t * wheelRes) }

// len is the number of pending events.
func (q *eventQueue) len() int { return q.n + len(q.far.ev) }

// advance moves the scan's start to time now; no event is due before it.
func (q *eventQueue) advance(now float64) {
	if b := wheelBucket(now); b > q.cur {
		q.cur = b
	}
}

func (q *eventQueue) push(t float64, kind uint32, a, b int32) {
	bk := wheelBucket(t)
	if bk < q.cur {
		// Due before the simulated time (the engine never asks for
		// that): first, as a heap would give it, not a turn later.
		bk = q.cur
	}
	if bk >= q.cur+wheelSize {
		q.far.push(t, kind, a, b)
		return
	}
	e := event{t: t, a: kind<<evKindShift | uint32(a), b: b}
	id := q.free
	if id >= 0 {
		q.free = q.nodes[id].next
	} else {
		q.nodes = append(q.nodes, wnode{})
		id = int32(len(q.nodes) - 1)
	}
	slot := int32(bk & wheelMask)
	q.nodes[id] = wnode{event: e, next: q.head[slot]}
	q.head[slot] = id
	q.used[slot>>6] |= 1 << (slot & 63)
	q.n++
	if !q.nextOK || bk > q.nextBucket {
		return
	}
	switch {
	case bk < q.nextBucket || t < q.nextT:
		// The new event is the earliest; it heads its bucket's list.
		q.nextBucket, q.nextT, q.nextSlot, q.nextPrev = bk, t, slot, -1
	case q.nextPrev < 0:
		// It went in front of the cached earliest.
		q.nextPrev = id
	}
}

// find locates the wheel's earliest event, returning false when the wheel
// is empty.
func (q *eventQueue) find() bool {
	if q.nextOK {
		return true
	}
	if q.n == 0 {
		return false
	}
	// From cur's bucket on, around the wheel: a full turn comes back to
	// cur's word, whose bits below cur's are the wheel's last buckets.
	start := int32(q.cur & wheelMask)
	w := start >> 6
	m := q.used[w] &^ (1<<(start&63) - 1)
	for m == 0 {
		w = (w + 1) & (wheelWords - 1)
		m = q.used[w]
	}
	slot := w<<6 | int32(bits.TrailingZeros64(m))
	// The earliest in the bucket, the first in list order among equals.
	prev, best, bestPrev := int32(-1), q.head[slot], int32(-1)
	for i := q.head[slot]; i >= 0; i = q.nodes[i].next {
		if q.nodes[i].t < q.nodes[best].t {
			best, bestPrev = i, prev
		}
		prev = i
	}
	q.nextBucket = q.cur + int64((slot-start)&wheelMask)
	q.nextT, q.nextSlot, q.nextPrev, q.nextOK = q.nodes[best].t, slot, bestPrev, true
	return true
}

// peek returns the earliest event time, or +Inf when there is none.
func (q *eventQueue) peek() float64 {
	t := q.far.peek()
	if q.find() && q.nextT < t {
		return q.nextT
	}
	return t
}

// pop removes and returns the earliest event; the queue must not be
// empty.
func (q *eventQueue) pop() event {
	if !q.find() || len(q.far.ev) > 0 && q.far.ev[0].t < q.nextT {
		e := q.far.pop()
		q.cur = max(q.cur, wheelBucket(e.t))
		return e
	}
	slot := q.nextSlot
	var i int32
	if p := q.nextPrev; p >= 0 {
		i = q.nodes[p].next
		q.nodes[p].next = q.nodes[i].next
	} else {
		i = q.head[slot]
		q.head[slot] = q.nodes[i].next
	}
	nd := &q.nodes[i]
	if q.head[slot] < 0 {
		q.used[slot>>6] &^= 1 << (slot & 63)
	}
	e := nd.event
	nd.next = q.free
	q.free = i
	q.n--
	q.nextOK = false
	q.cur = q.nextBucket
	return e
}
