package scaler_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/scaler"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Verifies, on a real API server, that dry-run leaves a Normal Recommended
// Event with the decision's sentence on its target when the recommendation
// changes, and that a load moving up and down does not flood the Event
// store: the same direction waits five minutes, a turn round passes once.
func TestDryRunRecommendedEvents(t *testing.T) {
	e := newEnv(t)
	kubetest.CreateDeployments(t, e.admin, kubetest.Deployment(e.ns, "worker", 1, nil))
	cfg := configFor(t, e.ns, "", "worker")
	clk := &fakeClock{now: time.Now()}
	l := &load{total: 350}
	lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: l,
		Scaler: e.newScaler(t, scaler.Options{Mode: scaler.ModeDryRun, Now: clk.Now})}

	recommended := func() []string {
		var out []string
		for _, ev := range kubetest.Events(t, e.admin, e.ns, "worker") {
			if strings.HasPrefix(ev, "Normal "+scaler.ReasonRecommended+": ") {
				out = append(out, ev)
			}
		}
		return out
	}
	// tick runs one tick at the fake time and returns the desired count.
	tick := func(total float64) int32 {
		t.Helper()
		l.set(total)
		tk := lp.RunOnce(context.Background(), clk.Now())
		d, ok := tk.Plan.Decision("worker")
		if !ok || tk.Err != nil || len(tk.Outcomes) != 1 || !tk.Outcomes[0].Recommended {
			t.Fatalf("tick: decision %+v err %v outcomes %+v", d, tk.Err, tk.Outcomes)
		}
		return d.Desired
	}
	// settle waits for the asynchronous recorder and checks the count.
	settle := func(want int, last string) {
		t.Helper()
		if last != "" {
			kubetest.WaitEvent(t, e.admin, e.ns, "worker", "Normal "+scaler.ReasonRecommended, last)
		}
		time.Sleep(time.Second)
		if got := recommended(); len(got) != want {
			t.Fatalf("%d Recommended Events, want %d: %q", len(got), want, got)
		}
	}

	up := tick(350)
	if up <= 1 {
		t.Fatalf("desired %d, want a scale-up recommendation", up)
	}
	settle(1, "replicas 1 → "+itoa(up)+" (nothing written): ")
	ev := recommended()[0]
	if !strings.Contains(ev, "dry-run recommends") || len(ev) < 60 {
		t.Errorf("the Event should carry the decision's sentence: %q", ev)
	}

	clk.Add(15 * time.Second)
	if more := tick(600); more == up {
		t.Fatalf("desired stayed %d: the test needs a higher recommendation", more)
	}
	settle(1, "") // same direction inside the interval: not told

	clk.Add(15 * time.Second)
	down := tick(150)
	settle(2, "replicas 1 → "+itoa(down)+" (nothing written)") // a turn round is told at once

	clk.Add(15 * time.Second)
	tick(600)
	settle(2, "") // a second turn inside the interval is not

	clk.Add(scaler.RecommendEventInterval)
	again := tick(600)
	settle(3, "replicas 1 → "+itoa(again)+" (nothing written)")
	if spec, _ := kubetest.Replicas(t, e.admin, e.ns, "worker"); spec != 1 {
		t.Errorf("dry-run changed spec.replicas to %d", spec)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
