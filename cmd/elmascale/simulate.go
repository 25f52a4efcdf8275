package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/elmascale/elmascale/simulations"
	"github.com/elmascale/elmascale/simulations/report"
)

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarioFlag := fs.String("scenario", "", "scenario file, the name of a shipped scenario, or all (-list shows them)")
	policyFlag := fs.String("policy", "all", "comma-separated policies: "+strings.Join(simulations.PolicyNames(), ", ")+", or all")
	seed := fs.Uint64("seed", 0, "first seed (default: the scenario's)")
	seeds := fs.Int("seeds", 1, "number of consecutive seeds to run and average")
	out := fs.String("out", "", "directory for report.md and the plots (one subdirectory per scenario with -scenario all)")
	bench := fs.String("benchmarks", "", "also rewrite this benchmarks page, with its plots in -out")
	list := fs.Bool("list", false, "list the shipped scenarios and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: elmascale simulate --scenario F [--policy P] [--seed N] [--seeds K] --out DIR [--benchmarks FILE]")
		fmt.Fprintln(stderr, "\nRuns a scenario on the simulated ELMA365 cluster under each policy, through the same")
		fmt.Fprintln(stderr, "control loop and policy code the daemon runs, and writes a score table and plots.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *list {
		for _, n := range simulations.ScenarioNames() {
			sc, err := simulations.LoadShipped(n)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", n, err)
				return 1
			}
			fmt.Fprintf(stdout, "%-20s %s (%s)\n", n, sc.Description, sc.Duration)
		}
		return 0
	}
	if *scenarioFlag == "" || *out == "" || *seeds < 1 {
		fs.Usage()
		return 2
	}
	policies, err := parsePolicies(*policyFlag)
	if err != nil {
		fmt.Fprintln(stderr, "simulate:", err)
		return 2
	}
	var scenarios []*simulations.Scenario
	if *scenarioFlag == "all" {
		for _, n := range simulations.ScenarioNames() {
			sc, err := simulations.LoadShipped(n)
			if err != nil {
				fmt.Fprintln(stderr, "simulate:", err)
				return 1
			}
			scenarios = append(scenarios, sc)
		}
	} else {
		sc, err := loadScenario(*scenarioFlag)
		if err != nil {
			fmt.Fprintln(stderr, "simulate:", err)
			return 1
		}
		scenarios = append(scenarios, sc)
	}

	var all []*report.Scenario
	var timings []report.Timing
	for _, sc := range scenarios {
		first := *seed
		if first == 0 {
			first = sc.Seed
		}
		rs := &report.Scenario{Scenario: sc, Wall: map[string]time.Duration{}}
		for k := 0; k < *seeds; k++ {
			rs.Seeds = append(rs.Seeds, first+uint64(k))
		}
		yamls := map[string][]byte{}
		rs.Runs = make([][]*simulations.Result, len(rs.Seeds))
		for _, name := range policies {
			t := report.Timing{Scenario: sc.Name, Policy: name}
			for k, s := range rs.Seeds {
				p, err := simulations.BuildPolicy(sc, name, s)
				if err != nil {
					fmt.Fprintf(stderr, "simulate: %s: %v\n", sc.Name, err)
					return 1
				}
				if p.YAML != nil {
					yamls[name] = p.YAML
				}
				start := time.Now()
				r, err := simulations.Run(ctx, sc, p, s)
				if err != nil {
					fmt.Fprintf(stderr, "simulate: %s/%s: %v\n", sc.Name, name, err)
					return 1
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
		dir := *out
		if len(scenarios) > 1 {
			dir = filepath.Join(*out, sc.Name)
		}
		if *bench == "" || len(scenarios) == 1 {
			if err := report.WriteScenario(dir, rs, yamls); err != nil {
				fmt.Fprintln(stderr, "simulate:", err)
				return 1
			}
		}
		fmt.Fprintf(stdout, "## %s\n\n", sc.Name)
		report.WriteScoreTable(stdout, rs)
		fmt.Fprintln(stdout)
		all = append(all, rs)
	}
	if *bench != "" {
		if err := report.WriteBenchmarks(*bench, *out, all, timings); err != nil {
			fmt.Fprintln(stderr, "simulate:", err)
			return 1
		}
		fmt.Fprintf(stderr, "wrote %s\n", *bench)
	} else {
		fmt.Fprintf(stderr, "wrote %s\n", filepath.Join(*out, "report.md"))
	}
	return 0
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
