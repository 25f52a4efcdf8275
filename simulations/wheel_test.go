package simulations

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// Verifies that the event queue gives back every event pushed, in time
// order, whatever the mix: events due within the wheel's bucket, within
// its horizon, beyond it (the heap's), a few before the simulated time,
// with the simulated time moving on between pops as the engine moves it,
// and events at equal times.
func TestEventQueueOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := newEventQueue()
		now := rapid.Float64Range(0, 1e6).Draw(t, "start")
		q.advance(now)
		var pending []float64
		ops := rapid.SliceOfN(rapid.IntRange(0, 9), 1, 600).Draw(t, "ops")
		for k, op := range ops {
			switch {
			case op < 6:
				// Within a bucket, within 4 s, or up to a minute out;
				// some at exactly now or at a time already pending.
				var d float64
				switch op {
				case 0:
					d = 0
				case 1:
					d = rapid.Float64Range(0, 1.0/wheelRes).Draw(t, "d")
				case 2, 3:
					d = rapid.Float64Range(0, 4.5).Draw(t, "d")
				case 4:
					d = rapid.Float64Range(0, 60).Draw(t, "d")
				case 5:
					if len(pending) > 0 {
						d = pending[rapid.IntRange(0, len(pending)-1).Draw(t, "same")] - now
					}
				}
				if op == 0 && rapid.Bool().Draw(t, "past") {
					// Before now, which the engine never asks for: it
					// must still come out first.
					d = -rapid.Float64Range(0, 0.01).Draw(t, "before")
				}
				q.push(now+d, evDone, int32(k), 0)
				pending = append(pending, now+d)
			case op < 8 && q.len() > 0:
				e := q.pop()
				slices.Sort(pending)
				if e.t != pending[0] {
					t.Fatalf("op %d: popped %v, the earliest pending is %v", k, e.t, pending[0])
				}
				pending = pending[1:]
				now = e.t
			default:
				// Time moves on, never past the earliest pending event.
				next := now + rapid.Float64Range(0, 10).Draw(t, "idle")
				if len(pending) > 0 {
					next = min(next, slices.Min(pending))
				}
				now = next
				q.advance(now)
			}
			if q.len() != len(pending) {
				t.Fatalf("op %d: %d events queued, %d pushed and not popped", k, q.len(), len(pending))
			}
			// Not after every step: the engine pushes several events
			// between a pop and the next peek.
			if !rapid.Bool().Draw(t, "peek") {
				continue
			}
			if want := slicesMinOrInf(pending); q.peek() != want {
				t.Fatalf("op %d: peek %v, the earliest pending is %v", k, q.peek(), want)
			}
		}
		slices.Sort(pending)
		for _, want := range pending {
			if e := q.pop(); e.t != want {
				t.Fatalf("draining: popped %v, want %v", e.t, want)
			}
		}
	})
}

func slicesMinOrInf(x []float64) float64 {
	if len(x) == 0 {
		return math.Inf(1)
	}
	return slices.Min(x)
}
