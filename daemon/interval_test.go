package daemon

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elmascale/elmascale/loop"
)

type countingTicker struct{ n atomic.Int32 }

func (c *countingTicker) RunOnce(context.Context, time.Time) loop.Tick {
	c.n.Add(1)
	return loop.Tick{}
}

func intervalConfig(iv string) string {
	return "apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: ns\ninterval: " + iv + "\nservices: {worker: {}}\n"
}

// Verifies that a reload shortening the interval from an hour to 10s
// takes effect at once: the next tick comes 10s after the last, not an
// hour later.
func TestReloadedIntervalTakesEffectAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(intervalConfig("1h")), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := NewConfigSource(path, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tk := &countingTicker{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); runLoop(ctx, tk, src, &Leadership{}, clk) }()
	defer func() { cancel(); <-done }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("the first tick and its wait", func() bool { return tk.n.Load() == 1 && clk.HasWaiters() })

	if err := os.WriteFile(path, []byte(intervalConfig("10s")), 0o600); err != nil {
		t.Fatal(err)
	}
	src.Check()
	if src.Current().Interval != 10*time.Second {
		t.Fatalf("reload not in force: interval %s", src.Current().Interval)
	}
	// Simulated time moves a second at a time; the tick must come after
	// 10s, well before the hour the old interval asked for.
	start := clk.Now()
	waitUntil("the second tick", func() bool {
		if tk.n.Load() >= 2 {
			return true
		}
		if clk.Since(start) < time.Hour && clk.HasWaiters() {
			clk.Step(time.Second)
		}
		return false
	})
	if took := clk.Since(start); took > 11*time.Second {
		t.Errorf("second tick %s after the reload, want about the new interval 10s", took)
	}
}
