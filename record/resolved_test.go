package record

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Verifies elmascale_signal_resolved is 1 for a usable signal, 0 for a
// missing or stale one, and disappears with its service.
func TestSignalResolved(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewSignalResolved(reg)
	tick := func(sigs ...policy.SignalResult) loop.Tick {
		return loop.Tick{Plan: policy.Plan{Decisions: []policy.Decision{{Service: "main", Signals: sigs}}}}
	}
	s.Record(tick(
		policy.SignalResult{Name: "cpu", Status: policy.StatusOK},
		policy.SignalResult{Name: "latency", Status: policy.StatusMissing},
		policy.SignalResult{Name: "in-flight", Status: policy.StatusStale},
	))
	want := `# HELP elmascale_signal_resolved 1 when the signal's observation at the last tick was usable (ok), 0 when it was missing, stale, failed or invalid; ` + "`elmascale doctor`" + ` says why and how to fix it.
# TYPE elmascale_signal_resolved gauge
elmascale_signal_resolved{service="main",signal="cpu"} 1
elmascale_signal_resolved{service="main",signal="in-flight"} 0
elmascale_signal_resolved{service="main",signal="latency"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "elmascale_signal_resolved"); err != nil {
		t.Error(err)
	}
	// A burst tick decides on some signals only: the others keep theirs.
	s.Record(tick(policy.SignalResult{Name: "latency", Status: policy.StatusOK}))
	want = `# HELP elmascale_signal_resolved 1 when the signal's observation at the last tick was usable (ok), 0 when it was missing, stale, failed or invalid; ` + "`elmascale doctor`" + ` says why and how to fix it.
# TYPE elmascale_signal_resolved gauge
elmascale_signal_resolved{service="main",signal="cpu"} 1
elmascale_signal_resolved{service="main",signal="in-flight"} 0
elmascale_signal_resolved{service="main",signal="latency"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "elmascale_signal_resolved"); err != nil {
		t.Error(err)
	}
	// A service that left the config leaves no series behind.
	s.Record(loop.Tick{Plan: policy.Plan{Decisions: []policy.Decision{{Service: "worker"}}}})
	if n := testutil.CollectAndCount(reg, "elmascale_signal_resolved"); n != 0 {
		t.Errorf("%d series left after main left the config", n)
	}
}
