package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/elmascale/elmascale/simulations"
)

// Scenario is one scenario run under several policies, possibly with
// several seeds: Runs[seed index][policy index], every seed listing the
// policies in the same order.
type Scenario struct {
	Scenario *simulations.Scenario
	Seeds    []uint64
	Runs     [][]*simulations.Result
	// Wall is the wall time each policy's runs took, by policy name.
	Wall map[string]time.Duration
}

// Policies returns the policy names in run order.
func (s *Scenario) Policies() []string {
	var out []string
	if len(s.Runs) == 0 {
		return out
	}
	for _, r := range s.Runs[0] {
		out = append(out, r.Policy)
	}
	return out
}

// mean averages a score over the seeds for policy index p.
func (s *Scenario) mean(p int, f func(*simulations.Scores) float64) float64 {
	var sum float64
	for _, runs := range s.Runs {
		sum += f(&runs[p].Scores)
	}
	return sum / float64(len(s.Runs))
}

func (s *Scenario) spread(p int, f func(*simulations.Scores) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, runs := range s.Runs {
		v := f(&runs[p].Scores)
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

func (s *Scenario) index(policy string) int {
	for i, p := range s.Policies() {
		if p == policy {
			return i
		}
	}
	return -1
}

func violation(sc *simulations.Scores) float64 { return sc.ViolationSeconds }
func cost(sc *simulations.Scores) float64      { return sc.ReplicaSeconds }
func actions(sc *simulations.Scores) float64   { return float64(sc.ScaleActions) }

// WriteScoreTable writes the score table of a scenario as Markdown: one
// row per policy, scores averaged over the seeds.
func WriteScoreTable(w io.Writer, s *Scenario) {
	sc := s.Scenario
	oracle := s.index(simulations.PolicyOracle)
	fmt.Fprintf(w, "| policy | SLO-violation s | range over seeds | by SLO (e2e · services · queues) | replica-seconds | × oracle | scale actions |")
	for _, m := range sc.Marks {
		fmt.Fprintf(w, " recovery: %s (s) |", m.Name)
	}
	fmt.Fprintf(w, " queue wait p95 (s) |\n|---|--:|--:|---|--:|--:|--:|")
	for range sc.Marks {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w, "--:|")
	for p, name := range s.Policies() {
		lo, hi := s.spread(p, violation)
		rs := s.mean(p, cost)
		ratio := "–"
		if oracle >= 0 {
			ratio = fmt.Sprintf("%.3f", rs/s.mean(oracle, cost))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f–%.0f | %s | %.0f | %s | %.1f |", name, s.mean(p, violation), lo, hi, bySLO(s, p), rs, ratio, s.mean(p, actions))
		for k := range sc.Marks {
			rec := s.mean(p, func(x *simulations.Scores) float64 {
				if k < len(x.Recovery) {
					return x.Recovery[k].Seconds
				}
				return 0
			})
			notAll := false
			for _, runs := range s.Runs {
				if k < len(runs[p].Scores.Recovery) && !runs[p].Scores.Recovery[k].Recovered {
					notAll = true
				}
			}
			mark := ""
			if notAll {
				mark = " (not within horizon)"
			}
			fmt.Fprintf(w, " %.0f%s |", rec, mark)
		}
		var qs []string
		for _, q := range sc.Queues {
			qs = append(qs, fmt.Sprintf("%.1f", s.mean(p, func(x *simulations.Scores) float64 { return x.QueueWaitP95[q.Name] })))
		}
		fmt.Fprintf(w, " %s |\n", strings.Join(qs, " · "))
	}
}

// bySLO is the mean violation seconds of each SLO that was violated.
func bySLO(s *Scenario, p int) string {
	var parts []string
	add := func(kind string, get func(*simulations.Scores) map[string]float64, names []simulations.LatencySLO) {
		for _, l := range names {
			v := s.mean(p, func(x *simulations.Scores) float64 { return get(x)[l.Name] })
			if v > 0 {
				parts = append(parts, fmt.Sprintf("%s %s %.0f", kind, l.Name, v))
			}
		}
	}
	sc := s.Scenario
	add("e2e", func(x *simulations.Scores) map[string]float64 { return x.EndToEnd }, sc.SLO.EndToEnd)
	add("svc", func(x *simulations.Scores) map[string]float64 { return x.Services }, sc.SLO.Services)
	add("queue", func(x *simulations.Scores) map[string]float64 { return x.Queues }, sc.SLO.Queues)
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, " · ")
}

// Goal is elmascale against the goal it is built for on one scenario.
type Goal struct {
	Scenario string
	// Elmascale and Best are mean violation seconds; Best is the better of
	// the HPA-style and KEDA-style baselines, named by BestName.
	Elmascale, Best float64
	BestName        string
	// Reduction is 1 - Elmascale/Best (NaN when Best is zero).
	Reduction float64
	// CostVsBest and CostVsOracle are replica-second ratios.
	CostVsBest, CostVsOracle float64
	// Met says whether each part of the goal holds.
	ViolationsMet, CostMet, OracleMet bool
}

// CheckGoal compares elmascale with the better of HPA and KEDA (fewer
// violation seconds, then fewer replica-seconds) and with the oracle.
func CheckGoal(s *Scenario) (Goal, bool) {
	el, hpa, keda, or := s.index(simulations.PolicyElmascale), s.index(simulations.PolicyHPA), s.index(simulations.PolicyKEDA), s.index(simulations.PolicyOracle)
	if el < 0 || hpa < 0 || keda < 0 || or < 0 {
		return Goal{}, false
	}
	best := hpa
	vh, vk := s.mean(hpa, violation), s.mean(keda, violation)
	if vk < vh || (vk == vh && s.mean(keda, cost) < s.mean(hpa, cost)) {
		best = keda
	}
	g := Goal{Scenario: s.Scenario.Name, Elmascale: s.mean(el, violation), Best: s.mean(best, violation), BestName: s.Policies()[best]}
	g.Reduction = math.NaN()
	if g.Best > 0 {
		g.Reduction = 1 - g.Elmascale/g.Best
	}
	g.CostVsBest = s.mean(el, cost) / s.mean(best, cost)
	g.CostVsOracle = s.mean(el, cost) / s.mean(or, cost)
	g.ViolationsMet = g.Elmascale <= 0.5*g.Best
	g.CostMet = g.CostVsBest <= 1
	g.OracleMet = g.CostVsOracle <= 1.15
	return g, true
}

// WriteGoalTable writes one row per scenario checking the goal.
func WriteGoalTable(w io.Writer, goals []Goal) {
	fmt.Fprintln(w, "| scenario | elmascale violation s | best of HPA/KEDA (s) | reduction | ≥50% fewer | replica-s vs that baseline | no more | replica-s vs oracle | ≤1.15× |")
	fmt.Fprintln(w, "|---|--:|--:|--:|:-:|--:|:-:|--:|:-:|")
	for _, g := range goals {
		red := "n/a (baseline has none)"
		if !math.IsNaN(g.Reduction) {
			red = fmt.Sprintf("%.0f%%", g.Reduction*100)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f (%s) | %s | %s | %.3f | %s | %.3f | %s |\n", g.Scenario, g.Elmascale, g.Best, g.BestName, red,
			yes(g.ViolationsMet), g.CostVsBest, yes(g.CostMet), g.CostVsOracle, yes(g.OracleMet))
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// WriteUnrelieved lists bottlenecks a policy found but could not scale.
func WriteUnrelieved(w io.Writer, s *Scenario) {
	any := false
	for p, name := range s.Policies() {
		for _, u := range s.Runs[0][p].Unrelieved {
			if !any {
				fmt.Fprintln(w, "\nBottlenecks that scaling cannot relieve (first seed):")
				fmt.Fprintln(w)
				any = true
			}
			fmt.Fprintf(w, "- %s: **%s** for %.0f s, explaining %s — “%s”\n", name, u.Service, u.Seconds, strings.Join(u.Explains, ", "), u.Reason)
		}
	}
}

// WriteScenario writes dir/report.md with the scenario's score table and
// plots (PNG files beside it), and the configurations used.
func WriteScenario(dir string, s *Scenario, policyYAML map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plots, err := WritePlots(dir, "", s)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := s.Scenario
	fmt.Fprintf(f, "# Simulation: %s\n\n%s\n\n", sc.Name, sc.Description)
	fmt.Fprintf(f, "Duration %s (first %s warm-up, not scored), seeds %v, SLO window %s. ", sc.Duration, sc.Warmup, s.Seeds, sc.SLO.Window)
	fmt.Fprintf(f, "Scores are means over the seeds; replica-seconds count every pod that exists (starting, ready or terminating).\n\n")
	WriteScoreTable(f, s)
	if g, ok := CheckGoal(s); ok {
		fmt.Fprintln(f, "\nThe goal (elmascale against the better of HPA-style and KEDA-style, and the oracle):")
		fmt.Fprintln(f)
		WriteGoalTable(f, []Goal{g})
	}
	WriteUnrelieved(f, s)
	fmt.Fprintln(f, "\n## Plots (first seed)")
	for _, p := range plots {
		fmt.Fprintf(f, "\n![%s](%s)\n", p.Title, p.File)
	}
	if len(policyYAML) > 0 {
		fmt.Fprintln(f, "\n## Configurations")
		names := make([]string, 0, len(policyYAML))
		for n := range policyYAML {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(f, "\n<details><summary>%s</summary>\n\n```yaml\n%s```\n\n</details>\n", n, policyYAML[n])
		}
	}
	return f.Close()
}
