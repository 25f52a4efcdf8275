package simulations

import (
	"slices"
	"strings"
	"testing"
)

// Verifies the singleton-overload scenario's promises: notifier saturates
// and is never run as more than one pod under any policy; elmascale names
// it as the bottleneck behind main's latency and says that scaling cannot
// relieve it; and elmascale spends no replicas on main, whose latency is
// only a symptom.
func TestSingletonOverloadIsReportedNotScaled(t *testing.T) {
	sc, err := LoadShipped("singleton-overload")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range PolicyNames() {
		r := runPolicy(t, sc, name, sc.Seed)
		for i, n := range r.Series.Values["replicas/notifier"] {
			if n != 1 {
				t.Fatalf("%s: notifier has %g pods in window %d", name, n, i)
			}
		}
		if r.Scores.Services["notifier"] == 0 {
			t.Errorf("%s: notifier never violated its SLO; the scenario no longer saturates it", name)
		}
		if name != PolicyElmascale {
			continue
		}
		var found *Unrelieved
		for i := range r.Unrelieved {
			if r.Unrelieved[i].Service == "notifier" {
				found = &r.Unrelieved[i]
			}
		}
		if found == nil {
			t.Fatalf("elmascale did not report notifier as an unrelievable bottleneck: %+v", r.Unrelieved)
		}
		if found.Seconds < 5*60 {
			t.Errorf("notifier reported for only %.0fs of a 15-minute overload", found.Seconds)
		}
		if !strings.Contains(found.Reason, "cannot be relieved") {
			t.Errorf("reason does not say the bottleneck cannot be relieved: %q", found.Reason)
		}
		if !slices.Contains(found.Explains, "main") {
			t.Errorf("notifier should explain main's latency, explains %v", found.Explains)
		}
		if n := r.Scores.ScaleActionsByService["main"]; n != 0 {
			t.Errorf("elmascale scaled main %d times for notifier's overload", n)
		}
	}
}
