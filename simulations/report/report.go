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
func elastic(sc *simulations.Scores) float64   { return sc.ElasticReplicaSeconds }
func actions(sc *simulations.Scores) float64   { return float64(sc.ScaleActions) }

// relievable is NaN when the run was not scored against a reference.
func relievable(sc *simulations.Scores) float64 {
	if sc.RelievableViolationSeconds == nil {
		return math.NaN()
	}
	return *sc.RelievableViolationSeconds
}

// ratio formats a/b, or "–" when b is zero or either is NaN.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func num(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.0f", x)
}

// PolicyLines explains each policy in one line, for the reports.
var PolicyLines = []struct{ Name, Line string }{
	{simulations.PolicyElmascale, "the scenario's elmascale configuration (usually the ELMA365 preset with the overlay in `simulations/scenarios/configs/elma365-tuned.yaml`), through the daemon's loop and policy."},
	{simulations.PolicyPreset, "the shipped ELMA365 preset exactly as shipped, through the same loop and policy."},
	{simulations.PolicyHPA, "HPA-style: one autoscaling/v2 HPA per scalable service on CPU at the baseline target, default behavior, synced every 15 s on metrics-server samples; no call graph, no queues."},
	{simulations.PolicyLatencyHPA, "HPA-style plus a p95 latency metric on every service with an SLO, each scaled on its own breach (no attribution to a dependency)."},
	{simulations.PolicyKEDA, "KEDA-style: ScaledObjects whose HPA polls every 15 s; queue consumers on a RabbitMQ QueueLength trigger plus a CPU trigger, other services on CPU; pollingInterval governs activation from zero only."},
	{simulations.PolicyStatic, "every scalable service at the Enterprise default of two replicas, never scaled."},
	{simulations.PolicyOracle, "the reference: a replica schedule computed offline with foresight of the load and checked by replay (`simulations/oracle.go` states its guarantee); not a policy anyone can run."},
}

// WritePolicyLines lists the policies a report compares.
func WritePolicyLines(w io.Writer, s *Scenario) {
	have := map[string]bool{}
	for _, p := range s.Policies() {
		have[p] = true
	}
	for _, l := range PolicyLines {
		if have[l.Name] {
			fmt.Fprintf(w, "- `%s`: %s\n", l.Name, l.Line)
		}
	}
}

// WriteScoreTable writes the score table of a scenario as Markdown: one
// row per policy, scores averaged over the seeds. Relievable violation
// seconds are those in windows in which the policy missed an SLO the
// reference met; elastic replica-seconds are those above every service's
// floor.
func WriteScoreTable(w io.Writer, s *Scenario) {
	sc := s.Scenario
	oracle := s.index(simulations.PolicyOracle)
	fmt.Fprintf(w, "| policy | relievable violation s | SLO-violation s | range over seeds | by SLO (e2e · services · queues) | elastic replica-s | × reference | replica-seconds | × reference | scale actions |")
	for _, m := range sc.Marks {
		fmt.Fprintf(w, " recovery: %s (s) |", m.Name)
	}
	fmt.Fprintf(w, " queue wait p95 (s) |\n|---|--:|--:|--:|---|--:|--:|--:|--:|--:|")
	for range sc.Marks {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w, "--:|")
	for p, name := range s.Policies() {
		lo, hi := s.spread(p, violation)
		rs, es := s.mean(p, cost), s.mean(p, elastic)
		rRatio, eRatio := "–", "–"
		if oracle >= 0 {
			rRatio, eRatio = ratio(rs, s.mean(oracle, cost)), ratio(es, s.mean(oracle, elastic))
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f–%.0f | %s | %.0f | %s | %.0f | %s | %.1f |", name, num(s.mean(p, relievable)), s.mean(p, violation), lo, hi, bySLO(s, p), es, eRatio, rs, rRatio, s.mean(p, actions))
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
	writeSideEffects(w, s)
}

// writeSideEffects lists, under a score table, what the scores do not
// show in their own columns: saturated data stores and single-instance
// services, failed requests and abandoned attempts, and node pressure.
func writeSideEffects(w io.Writer, s *Scenario) {
	var lines []string
	for p, name := range s.Policies() {
		var parts []string
		sat := map[string]float64{}
		fail := map[string]float64{}
		tmo := map[string]float64{}
		var pending, nodes float64
		for _, runs := range s.Runs {
			x := &runs[p].Scores
			for k, v := range x.Saturated {
				sat[k] += v / float64(len(s.Runs))
			}
			for k, v := range x.FailedRequests {
				fail[k] += float64(v) / float64(len(s.Runs))
			}
			for k, v := range x.Timeouts {
				tmo[k] += float64(v) / float64(len(s.Runs))
			}
			pending += x.PendingPodSeconds / float64(len(s.Runs))
			nodes += x.NodeSeconds / float64(len(s.Runs))
		}
		for _, k := range sortedKeys(sat) {
			kind := "single-instance"
			if i := s.Scenario.ServiceIndex(k); i >= 0 && s.Scenario.Services[i].Store != "" {
				kind = "data store " + s.Scenario.Services[i].Store
			}
			parts = append(parts, fmt.Sprintf("%s (%s) saturated %.0f s", k, kind, sat[k]))
		}
		for _, k := range sortedKeys(fail) {
			parts = append(parts, fmt.Sprintf("%.0f failed requests at %s", fail[k], k))
		}
		for _, k := range sortedKeys(tmo) {
			parts = append(parts, fmt.Sprintf("%.0f abandoned attempts to %s", tmo[k], k))
		}
		if nodes > 0 {
			parts = append(parts, fmt.Sprintf("%.0f node-seconds, %.0f pod-seconds Pending for want of room", nodes, pending))
		}
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("- %s: %s", name, strings.Join(parts, "; ")))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nWhat no replica count relieves, and what the run cost besides replicas (means over the seeds):")
		fmt.Fprintln(w)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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
	// Elmascale and Best are mean relievable violation seconds; Best is
	// the better of the HPA-style and KEDA-style baselines, named by
	// BestName.
	Elmascale, Best float64
	BestName        string
	// Reduction is 1 - Elmascale/Best (NaN when Best is zero).
	Reduction float64
	// CostVsBest and CostVsReference are elastic replica-second ratios
	// (NaN when the denominator is zero).
	CostVsBest, CostVsReference float64
	// Met says whether each part of the goal holds.
	ViolationsMet, CostMet, ReferenceMet bool
}

// CheckGoal compares elmascale with the better of HPA and KEDA (fewer
// relievable violation seconds, then fewer elastic replica-seconds) and
// with the reference. It needs all four runs, scored against the
// reference.
func CheckGoal(s *Scenario) (Goal, bool) {
	el, hpa, keda, or := s.index(simulations.PolicyElmascale), s.index(simulations.PolicyHPA), s.index(simulations.PolicyKEDA), s.index(simulations.PolicyOracle)
	if el < 0 || hpa < 0 || keda < 0 || or < 0 || math.IsNaN(s.mean(el, relievable)) {
		return Goal{}, false
	}
	best := hpa
	vh, vk := s.mean(hpa, relievable), s.mean(keda, relievable)
	if vk < vh || (vk == vh && s.mean(keda, elastic) < s.mean(hpa, elastic)) {
		best = keda
	}
	g := Goal{Scenario: s.Scenario.Name, Elmascale: s.mean(el, relievable), Best: s.mean(best, relievable), BestName: s.Policies()[best]}
	g.Reduction = math.NaN()
	if g.Best > 0 {
		g.Reduction = 1 - g.Elmascale/g.Best
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			if a == 0 {
				return 1
			}
			return math.Inf(1)
		}
		return a / b
	}
	g.CostVsBest = div(s.mean(el, elastic), s.mean(best, elastic))
	g.CostVsReference = div(s.mean(el, elastic), s.mean(or, elastic))
	g.ViolationsMet = g.Elmascale <= 0.5*g.Best
	g.CostMet = g.CostVsBest <= 1
	g.ReferenceMet = g.CostVsReference <= 1.15
	return g, true
}

// WriteGoalTable writes one row per scenario checking the goal.
func WriteGoalTable(w io.Writer, goals []Goal) {
	fmt.Fprintln(w, "| scenario | elmascale relievable violation s | best of HPA/KEDA (s) | reduction | ≥50% fewer | elastic replica-s vs that baseline | no more | elastic replica-s vs reference | ≤1.15× |")
	fmt.Fprintln(w, "|---|--:|--:|--:|:-:|--:|:-:|--:|:-:|")
	for _, g := range goals {
		red := "n/a (baseline has none)"
		if !math.IsNaN(g.Reduction) {
			red = fmt.Sprintf("%.0f%%", g.Reduction*100)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f (%s) | %s | %s | %.3f | %s | %.3f | %s |\n", g.Scenario, g.Elmascale, g.Best, g.BestName, red,
			yes(g.ViolationsMet), g.CostVsBest, yes(g.CostMet), g.CostVsReference, yes(g.ReferenceMet))
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
	fmt.Fprintf(f, "Scores are means over the seeds; replica-seconds count every pod that exists (starting, ready or terminating), elastic replica-seconds those above every service's floor (its minReplicas, pinned at one); relievable violation seconds are those in windows in which the policy missed an SLO the reference met in that window.\n\n")
	WritePolicyLines(f, s)
	fmt.Fprintln(f)
	WriteScoreTable(f, s)
	if g, ok := CheckGoal(s); ok {
		fmt.Fprintln(f, "\nThe goal (elmascale against the better of HPA-style and KEDA-style, and the reference):")
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
