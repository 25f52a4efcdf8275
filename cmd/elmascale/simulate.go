package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

	// The trace-driven what-if: the load recorded in a Prometheus.
	fromProm, capture string
	captureRange      time.Duration
	captureStep       time.Duration
	captureEnd        string
	serviceQuery      string
	serviceLabel      string
	queueQuery        string
	queueLabel        string
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
Relievable violation seconds and the goal need the oracle in the run.

What-if on a recorded load: with --from-prometheus, each load source of --scenario is replaced
by the rate the cluster's Prometheus recorded for its service (the Linkerd ingress controller's
outbound requests, by dst_deployment) or queue (RabbitMQ's publish rate) over --range, and the
scenario's cluster, SLOs and configuration replay it.`,
		Example: `  elmascale simulate --list
  elmascale simulate --scenario script-storm --policy elmascale,hpa --out /tmp/storm
  elmascale simulate --scenario elma365-day --from-prometheus http://prometheus:9090 --range 7d \
    --capture /tmp/week.yaml --policy elmascale,hpa --out /tmp/week`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimulate(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.scenario, "scenario", "", "scenario file, the name of a shipped scenario, or all (--list shows them; required)")
	fs.StringVar(&f.policy, "policy", "all", "comma-separated policies: "+strings.Join(simulations.PolicyNames(), ", ")+", or all (which leaves out "+strings.Join(simulations.ExtraPolicyNames(), ", ")+")")
	fs.Uint64Var(&f.seed, "seed", 0, "first seed (default: the scenario's)")
	fs.IntVar(&f.seeds, "seeds", 1, "number of consecutive seeds to run and average")
	fs.StringVar(&f.out, "out", "", "directory for report.md and the plots, one subdirectory per scenario with --scenario all (required)")
	fs.StringVar(&f.bench, "benchmarks", "", "also rewrite this benchmarks page, with its plots in --out")
	fs.BoolVar(&f.list, "list", false, "list the shipped scenarios and exit")
	fs.StringVar(&f.fromProm, "from-prometheus", "", "what-if on a recorded load: replace each load source of --scenario by the rate this Prometheus recorded for its service or queue (Linkerd ingress requests by dst_deployment, RabbitMQ publishes by queue)")
	f.captureRange = 7 * 24 * time.Hour
	fs.Var(&daysDuration{&f.captureRange}, "range", "with --from-prometheus, how much of the record to replay, ending at --end: 7d, 36h, 1d12h")
	durationFlag(fs, &f.captureStep, "step", 5*time.Minute, time.Second, "", "with --from-prometheus, the resolution of the recorded profiles")
	fs.StringVar(&f.captureEnd, "end", "", "with --from-prometheus, the end of the range, RFC 3339 (default: now)")
	fs.StringVar(&f.serviceQuery, "service-rate-query", simulations.DefaultCaptureServiceQuery, "with --from-prometheus, the PromQL giving each entry service's requests per second from outside the cluster, one series per service")
	fs.StringVar(&f.serviceLabel, "service-rate-label", simulations.DefaultCaptureServiceLabel, "the label of --service-rate-query's series naming the service")
	fs.StringVar(&f.queueQuery, "queue-rate-query", simulations.DefaultCaptureQueueQuery, "with --from-prometheus, the PromQL giving each queue's messages per second published from outside the scenario's services")
	fs.StringVar(&f.queueLabel, "queue-rate-label", simulations.DefaultCaptureQueueLabel, "the label of --queue-rate-query's series naming the queue")
	fs.StringVar(&f.capture, "capture", "", "with --from-prometheus, also write the captured scenario (self-contained) to this file")
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
	if f.fromProm == "" && (f.capture != "" || f.captureEnd != "") {
		return usageErrorf("--capture and --end need --from-prometheus")
	}
	if f.fromProm != "" && f.scenario == "all" {
		return usageErrorf("--from-prometheus replays one scenario's cluster: give --scenario a name or file, not all")
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
	} else if f.fromProm != "" {
		sc, err := captureScenario(ctx, f)
		if err != nil {
			return failed(err)
		}
		scenarios = append(scenarios, sc)
	} else {
		sc, err := loadScenario(f.scenario)
		if err != nil {
			return failed(err)
		}
		scenarios = append(scenarios, sc)
	}

	printPolicyLegend(stdout, policies)
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

// captureScenario reads the load recorded in --from-prometheus over
// --range into --scenario's cluster, writing it to --capture if asked.
func captureScenario(ctx context.Context, f *simulateFlags) (*simulations.Scenario, error) {
	opts := simulations.CaptureOptions{URL: f.fromProm, Range: f.captureRange, Step: f.captureStep,
		ServiceQuery: f.serviceQuery, ServiceLabel: f.serviceLabel, QueueQuery: f.queueQuery, QueueLabel: f.queueLabel}
	if opts.ServiceQuery == "" || opts.ServiceLabel == "" || opts.QueueQuery == "" || opts.QueueLabel == "" {
		return nil, errors.New("--service-rate-query, --service-rate-label, --queue-rate-query and --queue-rate-label must not be empty")
	}
	if f.captureEnd != "" {
		end, err := time.Parse(time.RFC3339, f.captureEnd)
		if err != nil {
			return nil, fmt.Errorf("--end: %w", err)
		}
		opts.End = end
	}
	var (
		template []byte
		fsys     fs.FS
		dir      = "."
		err      error
	)
	if _, statErr := os.Stat(f.scenario); statErr == nil {
		abs, err := filepath.Abs(f.scenario)
		if err != nil {
			return nil, err
		}
		d, name := filepath.Split(abs)
		fsys = os.DirFS(d)
		template, err = fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
	} else if slices.Contains(simulations.ScenarioNames(), f.scenario) {
		fsys = simulations.Scenarios
		if template, err = fs.ReadFile(fsys, f.scenario+".yaml"); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("no scenario file %q and no shipped scenario of that name (have %s)", f.scenario, strings.Join(simulations.ScenarioNames(), ", "))
	}
	data, err := simulations.Capture(ctx, template, fsys, dir, opts)
	if err != nil {
		return nil, err
	}
	if f.capture != "" {
		if err := os.WriteFile(f.capture, data, 0o644); err != nil {
			return nil, err
		}
	}
	sc, err := simulations.ParseScenario(data, fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("captured scenario: %w", err)
	}
	return sc, nil
}

// daysDuration is a duration flag that also takes days: 7d, 1d12h.
type daysDuration struct{ p *time.Duration }

func (d *daysDuration) String() string {
	if *d.p%(24*time.Hour) == 0 && *d.p > 0 {
		return fmt.Sprintf("%dd", *d.p/(24*time.Hour))
	}
	return d.p.String()
}
func (d *daysDuration) Type() string { return "duration" }
func (d *daysDuration) Set(s string) error {
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return errors.New("must be a duration like 7d, 36h or 1d12h")
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var v time.Duration
	if rest != "" {
		var err error
		if v, err = time.ParseDuration(rest); err != nil {
			return errors.New("must be a duration like 7d, 36h or 1d12h")
		}
	}
	if days+v < time.Hour {
		return errors.New("must be at least 1h")
	}
	*d.p = days + v
	return nil
}

// policyLegend says in one line what each policy of the score table is.
var policyLegend = map[string]string{
	"elmascale":      "the scenario's elmascale configuration, through the daemon's loop and policy",
	"preset":         "the shipped ELMA365 preset (deploy/config/elma365.yaml), unchanged",
	"hpa":            "CPU utilization on every scalable service, as a HorizontalPodAutoscaler would",
	"keda":           "like hpa, but queue consumers scale on messages per replica, as KEDA's RabbitMQ trigger would",
	"latency-hpa":    "CPU plus latency against the SLO on every service, with no call graph: every breaching service scales",
	"static":         "every service at the ELMA365 Enterprise default of two replicas (single-instance services at one)",
	"oracle":         "offline, knowing the load in advance: a reference, not a policy one could run",
	"late-reference": "the reference's counts, each rise a tick plus the pods' start-up late: what is left of it without foresight",
}

func printPolicyLegend(w io.Writer, policies []string) {
	fmt.Fprintln(w, "Policies:")
	for _, p := range policies {
		if d, ok := policyLegend[p]; ok {
			fmt.Fprintf(w, "- %s: %s\n", p, d)
		}
	}
	fmt.Fprintln(w)
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
	names := append(simulations.PolicyNames(), simulations.ExtraPolicyNames()...)
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	var out []string
	for _, n := range strings.Split(arg, ",") {
		n = strings.TrimSpace(n)
		if !known[n] {
			return nil, fmt.Errorf("unknown policy %q (want %s or all)", n, strings.Join(names, ", "))
		}
		out = append(out, n)
	}
	return out, nil
}
