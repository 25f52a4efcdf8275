package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

func newRecommendCommand() *cobra.Command {
	var cfgPath, snapPath, output string
	var live *liveFlags
	cmd := &cobra.Command{
		Use:   "recommend",
		Short: "Compute decisions once from a snapshot file or live sources; change nothing",
		Long: `Compute one decision pass and print it. The input is either a snapshot file (--snapshot)
or one live collection from Prometheus, RabbitMQ and metrics.k8s.io (--prometheus,
--rabbitmq, --kubeconfig). Nothing is written anywhere, not even Events.`,
		Example: `  elmascale recommend --snapshot examples/snapshots/script-storm.json
  elmascale recommend --prometheus http://localhost:9090 --kubeconfig ~/.kube/config -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRecommend(cmd.Context(), cfgPath, snapPath, output, live, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfgPath, "config", "", "configuration file (default: the embedded ELMA365 preset)")
	fs.StringVar(&snapPath, "snapshot", "", "snapshot JSON file to decide on (instead of live sources)")
	enumFlag(cmd, &output, "output", "o", "table", []string{"table", "json"}, "output format")
	live = addLiveFlags(fs)
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	_ = cmd.MarkFlagFilename("snapshot", "json")
	return cmd
}

func runRecommend(ctx context.Context, cfgPath, snapPath, output string, live *liveFlags, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return failed(fmt.Errorf("config %s: %w", displayName(cfgPath), err))
	}
	col, liveOn, err := live.collector(zap.NewNop())
	if err != nil {
		return usageErrorf("%v", err)
	}
	var plan policy.Plan
	switch {
	case snapPath != "" && liveOn:
		return usageErrorf("give either --snapshot or live sources, not both")
	case snapPath != "":
		snap, err := readSnapshot(snapPath, cfg)
		if err != nil {
			return failed(err)
		}
		now := snap.Time
		if now.IsZero() {
			now = time.Now()
		}
		plan, _ = policy.Decide(cfg.Policy, snap, policy.State{}, now)
	case liveOn:
		// One collection: informers and queries end with this context.
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if cfg, err = expandLive(ctx, "recommend", cfg, col, stderr); err != nil {
			return failed(err)
		}
		targets, note, err := liveTargets(ctx, live.kubeconfig.String(), cfg)
		if err != nil {
			return failed(err)
		}
		if note != "" {
			fmt.Fprintln(stderr, note)
		}
		lp := &loop.Loop{Config: func() *config.Config { return cfg }, Collector: col, Scaler: targets}
		tick := lp.RunOnce(ctx, time.Now())
		if tick.Err != nil {
			fmt.Fprintf(stderr, "recommend: %v (affected services hold)\n", tick.Err)
		}
		plan = tick.Plan
	default:
		return usageErrorf("--snapshot or a live source (--prometheus, --rabbitmq, --kubeconfig) is required")
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return failed(err)
		}
		return nil
	}
	printPlan(stdout, plan)
	return nil
}

// readOnlyTargets reads scale targets and never acts: recommend changes
// nothing in the cluster.
type readOnlyTargets struct {
	observe func(context.Context, *config.Config) (map[string]loop.TargetStatus, error)
}

func (r readOnlyTargets) Observe(ctx context.Context, cfg *config.Config) (map[string]loop.TargetStatus, error) {
	return r.observe(ctx, cfg)
}

func (readOnlyTargets) Apply(context.Context, *config.Config, policy.Plan) []loop.Outcome {
	return nil
}

// liveTargets reads current replicas from the cluster when a kubeconfig is
// given; without one it assumes each service runs its minimum and says so.
func liveTargets(ctx context.Context, kubeconfig string, cfg *config.Config) (loop.Scaler, string, error) {
	if kubeconfig == "" {
		return readOnlyTargets{observe: func(context.Context, *config.Config) (map[string]loop.TargetStatus, error) {
			out := make(map[string]loop.TargetStatus, len(cfg.Policy.Services))
			for _, s := range cfg.Policy.Services {
				n := max(s.MinReplicas, 1)
				out[s.Name] = loop.TargetStatus{Found: true, Current: n, Ready: n}
			}
			return out, nil
		}}, "recommend: no --kubeconfig: current replicas assumed at each service's minReplicas", nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// A discarding recorder: recommend writes nothing, not even Events.
	sc, err := scaler.NewForConfig(rc, scaler.Options{Namespace: cfg.Namespace, Mode: scaler.ModeDryRun, Events: &record.FakeRecorder{}, Logger: zap.NewNop()})
	if err != nil {
		return nil, "", err
	}
	if err := sc.Start(ctx); err != nil {
		return nil, "", err
	}
	return readOnlyTargets{observe: sc.Observe}, "", nil
}

// printPlan writes the decision table: one line per service, changes and
// bottlenecks first so the interesting lines lead.
func printPlan(w io.Writer, plan policy.Plan) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREPLICAS\tBOTTLENECK\tLIMITED BY\tREASON")
	order := make([]policy.Decision, 0, len(plan.Decisions))
	var rest []policy.Decision
	for _, d := range plan.Decisions {
		if d.Desired != d.Current || d.Bottleneck {
			order = append(order, d)
		} else {
			rest = append(rest, d)
		}
	}
	for _, d := range append(order, rest...) {
		bn := ""
		if d.Bottleneck {
			bn = "yes"
		}
		limited := string(d.LimitedBy)
		if limited == "" {
			limited = "-"
		}
		fmt.Fprintf(tw, "%s\t%d → %d\t%s\t%s\t%s\n", d.Service, d.Current, d.Desired, bn, limited, readableNumbers(d.Reason))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal desired replicas: %d\n", plan.TotalDesired)
	printUnusable(w, plan)
}

// printUnusable says why signals could not be used, once per signal and
// cause: the table's reasons only say "latency failed", and the cause
// (a refused connection, a missing client) is what the reader must fix.
func printUnusable(w io.Writer, plan policy.Plan) {
	type cause struct {
		signal string
		status policy.ObservationStatus
		note   string
	}
	var order []cause
	services := map[cause][]string{}
	for _, d := range plan.Decisions {
		for _, sg := range d.Signals {
			if sg.Status == policy.StatusOK || sg.Status == "" {
				continue
			}
			c := cause{sg.Name, sg.Status, sg.Note}
			if _, seen := services[c]; !seen {
				order = append(order, c)
			}
			services[c] = append(services[c], d.Service)
		}
	}
	if len(order) == 0 {
		return
	}
	fmt.Fprintln(w, "\nsignals not used (their services hold rather than scale down):")
	for _, c := range order {
		on := strings.Join(services[c], ", ")
		if n := len(services[c]); n > 4 {
			on = fmt.Sprintf("%d services", n)
		}
		note := c.note
		if note == "" {
			note = "no reason given"
		}
		fmt.Fprintf(w, "  %s %s on %s: %s\n", c.signal, c.status, on, readableNumbers(note))
	}
}
