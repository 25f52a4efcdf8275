package scaler

import (
	"testing"
	"time"
)

// Verifies the per-target rate limit of Recommended Events: news only,
// one per interval in one direction, one extra when the direction turns
// round, and never more than two per interval however the signal flaps.
func TestNextRecommendationEvent(t *testing.T) {
	t0 := time.Unix(0, 0)
	type step struct {
		at               time.Duration
		current, desired int32
		want             bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"steady cluster writes nothing", []step{{0, 2, 2, false}, {time.Hour, 2, 2, false}}},
		{"first change is told", []step{{0, 2, 4, true}}},
		{"same recommendation is not news", []step{{0, 2, 4, true}, {time.Minute, 2, 4, false}, {time.Hour, 2, 4, false}}},
		{"same direction waits for the interval", []step{{0, 2, 4, true}, {time.Minute, 2, 5, false}, {4 * time.Minute, 2, 6, false}, {5 * time.Minute, 2, 6, true}}},
		{"a turn is told at once", []step{{0, 2, 4, true}, {time.Minute, 2, 2, true}}},
		{"flapping: two per interval at most", []step{
			{0, 2, 4, true}, {15 * time.Second, 2, 2, true}, {30 * time.Second, 2, 4, false}, {45 * time.Second, 2, 2, false},
			{60 * time.Second, 2, 4, false}, {5 * time.Minute, 2, 4, false}, // the turn pass is spent until 5m15s
		}},
		{"after the interval the flapping is told again", []step{
			{0, 2, 4, true}, {15 * time.Second, 2, 2, true}, {30 * time.Second, 2, 4, false}, {5*time.Minute + 15*time.Second, 2, 4, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last recommendationEvent
			ok := false
			for i, s := range tc.steps {
				next, emit := nextRecommendationEvent(last, ok, s.current, s.desired, t0.Add(s.at))
				if emit != s.want {
					t.Fatalf("step %d (%v: %d → %d): emit %v, want %v", i, s.at, s.current, s.desired, emit, s.want)
				}
				if emit {
					last, ok = next, true
				}
			}
		})
	}
}
