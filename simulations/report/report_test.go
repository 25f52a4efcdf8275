package report

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/elmascale/elmascale/simulations"
)

func result(policy string, viol, cost float64) *simulations.Result {
	return &simulations.Result{Policy: policy, Scores: simulations.Scores{ViolationSeconds: viol, ReplicaSeconds: cost}}
}

// Verifies the goal check: elmascale against the better of HPA and KEDA
// (fewer violations) and against the oracle.
func TestCheckGoal(t *testing.T) {
	s := &Scenario{
		Scenario: &simulations.Scenario{Name: "x"},
		Seeds:    []uint64{1},
		Runs: [][]*simulations.Result{{
			result("elmascale", 20, 110), result("hpa", 50, 120), result("keda", 40, 130), result("oracle", 0, 100),
		}},
	}
	g, ok := CheckGoal(s)
	if !ok {
		t.Fatal("no goal computed")
	}
	if g.BestName != "keda" || g.Best != 40 || math.Abs(g.Reduction-0.5) > 1e-9 {
		t.Errorf("best %s %g, reduction %g; want keda 40, 0.5", g.BestName, g.Best, g.Reduction)
	}
	if !g.ViolationsMet || !g.CostMet || !g.OracleMet {
		t.Errorf("goal parts %v %v %v, want all met", g.ViolationsMet, g.CostMet, g.OracleMet)
	}
	var b bytes.Buffer
	WriteGoalTable(&b, []Goal{g})
	if !strings.Contains(b.String(), "| x | 20 | 40 (keda) | 50% | yes |") {
		t.Errorf("goal table:\n%s", b.String())
	}
}
