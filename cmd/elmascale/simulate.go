package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/elmascale/elmascale/simulations"
	"github.com/elmascale/elmascale/simulations/report"
)

// simulateFlags are simulate's flags.
type simulateFlags struct {
	scenario, policy, out, bench string
	seed                         uint64
	seeds                        int
	list                         bool
}

func newSimulateCommand() *cobra.Command {
	f := &simulateFlags{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Score elmascale against HPA-, KEDA-style and static baselines and an oracle on a simulated ELMA365 cluster",
		Long: `Run a scenario on the simulated ELMA365 cluster under each policy, through the same
control loop and policy code the daemon runs, and write a score table and plots.

Policies:
  elmascale    the scenario's elmascale configuration, through the daemon's loop and policy
  preset       the shipped ELMA365 preset, unchanged
  hpa          an autoscaling/v2 HPA per service on CPU, synced every 15 s on metrics-server samples
  latency-hpa  hpa plus each service's p95 latency against its SLO, no attribution to a dependency
  keda         KEDA ScaledObjects: RabbitMQ queue length plus CPU on queue consumers, CPU elsewhere, 15 s
  static       every service at two replicas
  oracle       the reference: an offline schedule with foresight of the load, checked by replay
Relievable violation seconds and the goal need the oracle in the run.`,
		Example: `  elmascale simulate --list
  elmascale simulate --scenario script-storm --policy elmascale,hpa --out /tmp/storm`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimulate(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.scenario, "scenario", "", "scenario file, the name of a shipped scenario, or all (--list shows them; required)")
	fs.StringVar(&f.policy, "policy", "all", "comma-separated policies: "+strings.Join(simulations.PolicyNames(), ", ")+", or all")
	fs.Uint64Var(&f.seed, "seed", 0, "first seed (default: the scenario's)")
	fs.IntVar(&f.seeds, "seeds", 1, "number of consecutive seeds to run and average")
	fs.StringVar(&f.out, "out", "", "directory for report.md and the plots, one subdirectory per scenario with --scenario all (required)")
	fs.StringVar(&f.bench, "benchmarks", "", "also rewrite this benchmarks page, with its plots in --out")
	fs.BoolVar(&f.list, "list", false, "list the shipped scenarios and exit")
	_ = cmd.RegisterFlagCompletionFunc("scenario", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return append(simulations.ScenarioNames(), "all"), cobra.ShellCompDirectiveDefault
	})
	_ = cmd.RegisterFlagCompletionFunc("policy", cobra.FixedCompletions(append(simulations.PolicyNames(), "all"), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("out")
	_ = cmd.MarkFlagFilename("benchmarks", "md")
	return cmd
}

func runSimulate(ctx context.Context, f *simulateFlags, stdout, stderr io.Writer) error {
	if f.list {
		for _, n := range simulations.ScenarioNames() {
			sc, err := simulations.LoadShipped(n)
			if err != nil {
				return failed(fmt.Errorf("%s: %w", n, err))
			}
			fmt.Fprintf(stdout, "%-20s %s (%s)\n", n, sc.Description, sc.Duration)
		}
		return nil
	}
	switch {
	case f.scenario == "" && f.out == "":
		return usageErrorf("--scenario and --out are required (--list shows the scenarios)")
	case f.scenario == "":
		return usageErrorf("--scenario is required: a scenario file, a shipped scenario's name, or all (--list shows them)")
	case f.out == "":
		return usageErrorf("--out is required: the directory for report.md and the plots")
	case f.seeds < 1:
		return usageErrorf("--seeds must be at least 1")
	}
	policies, err := parsePolicies(f.policy)
	if err != nil {
		return usageErrorf("%v", err)
	}
	var scenarios []*simulations.Scenario
	if f.scenario == "all" {
		for _, n := range simulations.ScenarioNames() {
			sc, err := simulations.LoadShipped(n)
			if err != nil {
				return failed(err)
			}
			scenarios = append(scenarios, sc)
		}
	} else {
		sc, err := loadScenario(f.scenario)
		if err != nil {
			return failed(err)
		}
		scenarios = append(scenarios, sc)
	}

	var all []*report.Scenario
	var timings []report.Timing
	for _, sc := range scenarios {
		first := f.seed
		if first == 0 {
			first = sc.Seed
		}
		rs := &report.Scenario{Scenario: sc, Wall: map[string]time.Duration{}}
		for k := 0; k < f.seeds; k++ {
			rs.Seeds = append(rs.Seeds, first+uint64(k))
		}
		yamls := map[string][]byte{}
		rs.Runs = make([][]*simulations.Result, len(rs.Seeds))
		for _, name := range policies {
			t := report.Timing{Scenario: sc.Name, Policy: name}
			for k, s := range rs.Seeds {
				p, err := simulations.BuildPolicy(sc, name, s)
				if err != nil {
					return failed(fmt.Errorf("%s: %w", sc.Name, err))
				}
				if p.YAML != nil {
					yamls[name] = p.YAML
				}
				start := time.Now()
				r, err := simulations.Run(ctx, sc, p, s)
				if err != nil {
					return failed(fmt.Errorf("%s/%s: %w", sc.Name, name, err))
				}
				t.Wall += time.Since(start)
				t.Events += r.Events
				t.Runs++
				rs.Runs[k] = append(rs.Runs[k], r)
			}
			rs.Wall[name] = t.Wall
			timings = append(timings, t)
			fmt.Fprintf(stderr, "%s/%s: %d run(s), %.1fs\n", sc.Name, name, t.Runs, t.Wall.Seconds())
		}
		for _, runs := range rs.Runs {
			simulations.ScoreRelievable(runs)
		}
		dir := f.out
		if len(scenarios) > 1 {
			dir = filepath.Join(f.out, sc.Name)
		}
		if f.bench == "" || len(scenarios) == 1 {
			if err := report.WriteScenario(dir, rs, yamls); err != nil {
				return failed(err)
			}
		}
		fmt.Fprintf(stdout, "## %s\n\n", sc.Name)
		report.WriteScoreTable(stdout, rs)
		fmt.Fprintln(stdout)
		all = append(all, rs)
	}
	if f.bench != "" {
		if err := report.WriteBenchmarks(f.bench, f.out, all, timings); err != nil {
			return failed(err)
		}
		fmt.Fprintf(stderr, "wrote %s\n", f.bench)
	} else {
		fmt.Fprintf(stderr, "wrote %s\n", filepath.Join(f.out, "report.md"))
	}
	return nil
}

// loadScenario reads a scenario file, or a shipped scenario by name.
func loadScenario(arg string) (*simulations.Scenario, error) {
	if _, err := os.Stat(arg); err == nil {
		return simulations.LoadScenario(arg)
	}
	for _, n := range simulations.ScenarioNames() {
		if n == arg {
			return simulations.LoadShipped(n)
		}
	}
	return nil, fmt.Errorf("no scenario file %q and no shipped scenario of that name (have %s)", arg, strings.Join(simulations.ScenarioNames(), ", "))
}

func parsePolicies(arg string) ([]string, error) {
	if arg == "all" {
		return simulations.PolicyNames(), nil
	}
	known := map[string]bool{}
	for _, n := range simulations.PolicyNames() {
		known[n] = true
	}
	var out []string
	for _, n := range strings.Split(arg, ",") {
		n = strings.TrimSpace(n)
		if !known[n] {
			return nil, fmt.Errorf("unknown policy %q (want %s or all)", n, strings.Join(simulations.PolicyNames(), ", "))
		}
		out = append(out, n)
	}
	return out, nil
}
