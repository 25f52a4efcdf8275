package simulations

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// scanHeap is eventHeap with the plain pop it replaced, which finds the
// earliest child by a scan in order: the order of events at equal times
// depends on how a pop moves them, so the two must move them alike.
type scanHeap struct{ eventHeap }

func (h *scanHeap) pop() event {
	ev := h.ev
	top := ev[0]
	n := len(ev) - 1
	e := ev[n]
	ev = ev[:n]
	h.ev = ev
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if ev[j].t < ev[m].t {
				m = j
			}
		}
		if e.t <= ev[m].t {
			break
		}
		ev[i] = ev[m]
		i = m
	}
	if n > 0 {
		ev[i] = e
	}
	return top
}

// Verifies that eventHeap pops the very events a scanning pop would, in
// the same order, over pushes and pops at coarse times (so that many tie)
// and heaps of every size up to a few levels.
func TestEngineHeapPopsAsScan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var h eventHeap
		var ref scanHeap
		ops := rapid.SliceOfN(rapid.IntRange(0, 9), 1, 400).Draw(t, "ops")
		for k, op := range ops {
			if op < 6 || len(h.ev) == 0 {
				at := float64(op) / 4
				h.push(at, evDone, int32(k), int32(op))
				ref.push(at, evDone, int32(k), int32(op))
				continue
			}
			if got, want := h.pop(), ref.pop(); got != want {
				t.Fatalf("pop %d: got %+v, want %+v", k, got, want)
			}
		}
		for len(h.ev) > 0 {
			if got, want := h.pop(), ref.pop(); got != want {
				t.Fatalf("draining: got %+v, want %+v", got, want)
			}
		}
	})
}

// Verifies that an edge's integer bound on the random bits decides a
// fractional call exactly as comparing the uniform they make would.
func TestEngineFracBoundDrawsAsFloat(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.OneOf(rapid.Float64Range(0, math.Nextafter(1, 0)),
			rapid.SampledFrom([]float64{0, 0.5, 0.1, 0.3, 0.15, 0.02, 0.05, math.Nextafter(1, 0), 0x1p-53, 0x1p-54})).Draw(t, "p")
		x := rapid.Uint64().Draw(t, "x")
		k := x >> 11
		if bound, uniform := k < fracBound(p), float64(k)/(1<<53) < p; bound != uniform {
			t.Fatalf("p %v, x %#x: bound says %v, uniform %v", p, x, bound, uniform)
		}
		// Near the bound, where rounding would show.
		b := fracBound(p)
		for _, k := range []uint64{b - 1, b, b + 1} {
			if k >= 1<<53 {
				continue
			}
			if bound, uniform := k < b, float64(k)/(1<<53) < p; bound != uniform {
				t.Fatalf("p %v, k %d: bound says %v, uniform %v", p, k, bound, uniform)
			}
		}
	})
}
