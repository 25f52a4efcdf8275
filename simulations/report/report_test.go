package report

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/simulations"
)

func result(policy string, viol, cost float64) *simulations.Result {
	// A floor of 1000 replica-seconds under every policy: the goal is on
	// what lies above it.
	return &simulations.Result{Policy: policy, Scores: simulations.Scores{ViolationSeconds: viol + 7, RelievableViolationSeconds: &viol,
		ReplicaSeconds: cost + 1000, FloorReplicaSeconds: 1000, ElasticReplicaSeconds: cost}}
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
	if !g.ViolationsMet || !g.CostMet || !g.ReferenceMet {
		t.Errorf("goal parts %v %v %v, want all met", g.ViolationsMet, g.CostMet, g.ReferenceMet)
	}
	if math.Abs(g.CostVsReference-1.1) > 1e-9 || math.Abs(g.CostVsBest-110.0/130) > 1e-9 {
		t.Errorf("elastic cost ratios %g vs reference, %g vs keda; want 1.1 and %g", g.CostVsReference, g.CostVsBest, 110.0/130)
	}
	// On raw replica-seconds (1110 vs 1100) the reference ratio would hide
	// the 10% spent above the floor; the elastic one must not.
	s.Runs[0][0] = result("elmascale", 20, 120)
	if g, _ := CheckGoal(s); g.ReferenceMet {
		t.Errorf("elastic 1.2× the reference passed the ≤1.15× goal")
	}
	var b bytes.Buffer
	WriteGoalTable(&b, []Goal{g})
	if !strings.Contains(b.String(), "| x | 20 | 40 (keda) | 50% | yes |") {
		t.Errorf("goal table:\n%s", b.String())
	}
}

// Verifies that the benchmarks page repeats the detect-to-act table of
// detect-to-act.md beside the plots (measured on real components, so
// copied, not computed), with the line saying where it was measured and a
// link to the page; that no file means no section; and that a file without
// its table is an error rather than a section with nothing in it.
func TestBenchmarksDetectToAct(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "docs", "benchmarks")
	page := filepath.Join(dir, "BENCHMARKS.md")
	if err := WriteBenchmarks(page, img, nil, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(page); strings.Contains(string(b), "Detect-to-act") {
		t.Errorf("a detect-to-act section without its file:\n%s", b)
	}
	md := "# Detect-to-act\n\nHow.\n\n## Measured\n\n2-core machine, commit abc1234.\n\n| path | storms | p50 | p95 | max |\n| --- | --- | --- | --- | --- |\n| burst | 20 | 2.10 s | 2.70 s | 2.88 s |\n| tick alone | 20 | 8.39 s | 15.73 s | 16.34 s |\n\nThe goal is met.\n\n## Other\n\n| not | this |\n"
	if err := os.WriteFile(filepath.Join(img, DetectToActFile), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBenchmarks(page, img, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(page)
	got := string(b)
	for _, want := range []string{"## Detect-to-act", "(docs/benchmarks/detect-to-act.md)", "2-core machine, commit abc1234.", "| burst | 20 | 2.10 s | 2.70 s | 2.88 s |", "| tick alone | 20 | 8.39 s | 15.73 s | 16.34 s |"} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| not | this |") || strings.Contains(got, "The goal is met.") {
		t.Errorf("page copied beyond the Measured table:\n%s", got)
	}
	if err := os.WriteFile(filepath.Join(img, DetectToActFile), []byte("# Detect-to-act\n\n## Measured\n\nnot yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBenchmarks(page, img, nil, nil); err == nil || !strings.Contains(err.Error(), "no table") {
		t.Errorf("a Measured section without a table: %v, want an error", err)
	}
}

// The speed table gives each scenario's simulated seconds per wall second
// from its duration, and leaves the ratio out where the duration is unknown.
func TestWriteTimingsSimulatedSecondsPerWallSecond(t *testing.T) {
	var b bytes.Buffer
	writeTimings(&b, []Timing{
		{Scenario: "day", Policy: "elmascale", Runs: 2, Events: 40_000_000, Wall: 8 * time.Second},
		{Scenario: "other", Policy: "hpa", Runs: 1, Events: 10, Wall: time.Second},
		{Scenario: "day", Policy: "static", Runs: 0},
	}, map[string]time.Duration{"day": 24 * time.Hour})
	out := b.String()
	for _, want := range []string{
		"| day | elmascale | 20000000 | 4.00 | 5e+06 | 21600 |",
		"| other | hpa | 10 | 1.00 | 10 | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want a row %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "static") {
		t.Errorf("a policy without runs got a row:\n%s", out)
	}
}
