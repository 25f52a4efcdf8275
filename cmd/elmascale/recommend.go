package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/elmascale/elmascale/policy"
)

func runRecommend(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("recommend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded ELMA365 preset)")
	snapPath := fs.String("snapshot", "", "snapshot JSON file to decide on")
	output := fs.String("o", "table", "output format: table or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "recommend: -o must be table or json\n")
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "recommend: config %s: %v\n", displayName(*cfgPath), err)
		return 1
	}
	if *snapPath == "" {
		fmt.Fprintln(stderr, "recommend: --snapshot is required")
		return 2
	}
	snap, err := readSnapshot(*snapPath)
	if err != nil {
		fmt.Fprintf(stderr, "recommend: %v\n", err)
		return 1
	}
	now := snap.Time
	if now.IsZero() {
		now = time.Now()
	}
	plan, _ := policy.Decide(cfg.Policy, snap, policy.State{}, now)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			fmt.Fprintf(stderr, "recommend: %v\n", err)
			return 1
		}
		return 0
	}
	printPlan(stdout, plan)
	return 0
}

func readSnapshot(path string) (policy.Snapshot, error) {
	var snap policy.Snapshot
	data, err := os.ReadFile(path)
	if err != nil {
		return snap, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return snap, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return snap, nil
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
		fmt.Fprintf(tw, "%s\t%d → %d\t%s\t%s\t%s\n", d.Service, d.Current, d.Desired, bn, limited, d.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal desired replicas: %d\n", plan.TotalDesired)
}
