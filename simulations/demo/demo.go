// Package demo runs the daemon's loop against the embedded simulated ELMA365
// cluster in accelerated real time, so elmascale can be watched working
// without a Kubernetes cluster.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/record"
	"github.com/elmascale/elmascale/simulations"
)

// Options configure a demo run.
type Options struct {
	// Scenario is a shipped scenario name (default "elma365-day").
	Scenario string
	// Seed makes the simulated load reproducible.
	Seed uint64
	// Speedup is simulated seconds per wall-clock second (default 600: a
	// 24-hour day in 2.4 minutes).
	Speedup float64
	// Duration stops the demo after this much simulated time; zero runs the
	// whole scenario.
	Duration time.Duration
	// MetricsAddr serves /metrics, /api/v1/decisions and
	// /api/v1/recommendations; HealthAddr serves /healthz and /readyz, as
	// the daemon does. Empty turns a server off.
	MetricsAddr, HealthAddr string
	// OnListen is told the bound addresses.
	OnListen func(metrics, health string)
	// Out receives the live decision table.
	Out      io.Writer
	Registry *prometheus.Registry
	Version  string
}

// Summary is what a finished demo reports.
type Summary struct {
	Ticks        int
	ScaleActions int
	// PeakReplicas is the highest total of desired replicas seen.
	PeakReplicas int32
	// Bottlenecks counts ticks each service was a bottleneck.
	Bottlenecks map[string]int
}

// Run drives the scenario's elmascale configuration against the simulated
// cluster until the scenario (or Duration) ends or ctx is cancelled.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Scenario == "" {
		o.Scenario = "elma365-day"
	}
	if o.Speedup == 0 {
		o.Speedup = 600
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Registry == nil {
		o.Registry = record.NewRegistry()
	}
	sc, err := simulations.LoadShipped(o.Scenario)
	if err != nil {
		return Summary{}, fmt.Errorf("scenario %q (have %s): %w", o.Scenario, strings.Join(simulations.ScenarioNames(), ", "), err)
	}
	cfg := sc.Elmascale
	cluster := simulations.NewCluster(sc, o.Seed)

	// The simulated cluster is changed for real: this is apply mode, and
	// this process is the only (so the leading) instance.
	metrics := record.NewMetrics(o.Registry, false, o.Version)
	metrics.SetLeader(true)
	history := record.NewHistory("apply", 2000)
	// A tick is due every interval of simulated time, which passes Speedup
	// times faster than the wall clock the probes are read by.
	wallInterval := max(time.Second, time.Duration(float64(cfg.Interval)/o.Speedup))
	health := record.NewHealth(time.Now, func() time.Duration { return wallInterval })
	sum := Summary{Bottlenecks: map[string]int{}}

	srv, err := record.Endpoints{Registry: o.Registry, History: history, Health: health}.Serve(o.MetricsAddr, o.HealthAddr, nil)
	if err != nil {
		return Summary{}, err
	}
	defer srv.Close()
	if o.OnListen != nil {
		o.OnListen(srv.MetricsAddr, srv.HealthAddr)
	}
	if srv.MetricsAddr != "" {
		fmt.Fprintf(o.Out, "serving /metrics and /api/v1/decisions on http://%s\n", srv.MetricsAddr)
	}
	fmt.Fprintf(o.Out, "embedded simulated ELMA365 cluster: scenario %s (%s of load, %d services) at %g× speed\n\n",
		sc.Name, sc.Duration, len(cfg.Services), o.Speedup)
	table := newTable(o.Out, sc.Start)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop func(loop.Tick)
	if o.Duration > 0 {
		stopAt := sc.Start.Add(o.Duration)
		stop = func(t loop.Tick) {
			if !t.Time.Before(stopAt) {
				cancel()
			}
		}
	}
	err = runDemo(runCtx, cluster, cfg, o, loop.Recorders{metrics, history, health}, table, &sum, stop)
	finish(o.Out, &sum)
	// Stopped by its Duration or by the user: not a failure.
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return sum, err
}

func runDemo(ctx context.Context, cluster *simulations.Cluster, cfg *config.Config, o Options,
	rec loop.Recorder, table *table, sum *Summary, extra func(loop.Tick)) error {
	l := &loop.Loop{
		Config:    func() *config.Config { return cfg },
		Collector: cluster,
		Scaler:    cluster,
		Recorder:  rec,
	}
	return cluster.RunAccelerated(ctx, l, cfg.Interval, o.Speedup, func(t loop.Tick) {
		sum.Ticks++
		var total int32
		for _, d := range t.Plan.Decisions {
			total += d.Desired
			if d.Desired != d.Current {
				sum.ScaleActions++
			}
			if d.Bottleneck {
				sum.Bottlenecks[d.Service]++
			}
		}
		sum.PeakReplicas = max(sum.PeakReplicas, total)
		table.tick(t, total)
		if extra != nil {
			extra(t)
		}
	})
}

// finish prints what the run did.
func finish(out io.Writer, sum *Summary) {
	var names []string
	for n := range sum.Bottlenecks {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if sum.Bottlenecks[names[i]] != sum.Bottlenecks[names[j]] {
			return sum.Bottlenecks[names[i]] > sum.Bottlenecks[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s (%d ticks)", n, sum.Bottlenecks[n]))
	}
	fmt.Fprintf(out, "\n%d ticks, %d scale actions, peak %d replicas in total; bottlenecks: %s\n",
		sum.Ticks, sum.ScaleActions, sum.PeakReplicas, orNone(strings.Join(parts, ", ")))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// table prints every change as it happens and, each simulated half hour, a
// status line, so a person can follow the day.
type table struct {
	w          *tabwriter.Writer
	start      time.Time
	lastStatus time.Time
	bottleneck map[string]bool
}

func newTable(out io.Writer, start time.Time) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0), start: start, bottleneck: map[string]bool{}}
	fmt.Fprintln(t.w, "TIME\tSERVICE\tREPLICAS\tBOTTLENECK\tLIMITED BY\tREASON")
	t.w.Flush()
	return t
}

func (t *table) tick(k loop.Tick, total int32) {
	clock := k.Time.Format("15:04:05")
	var hot []string
	for _, d := range k.Plan.Decisions {
		if d.Bottleneck {
			hot = append(hot, d.Service)
		}
		// A change, or a service that just became a bottleneck (a pinned
		// one cannot change, so this is how it shows up).
		changed := d.Desired != d.Current
		newly := d.Bottleneck && !t.bottleneck[d.Service]
		t.bottleneck[d.Service] = d.Bottleneck
		if !changed && !newly {
			continue
		}
		bn := ""
		if d.Bottleneck {
			bn = "yes"
		}
		limit := string(d.LimitedBy)
		if limit == "" {
			limit = "-"
		}
		fmt.Fprintf(t.w, "%s\t%s\t%d → %d\t%s\t%s\t%s\n", clock, d.Service, d.Current, d.Desired, bn, limit, shorten(d.Reason, 140))
	}
	if k.Time.Sub(t.lastStatus) >= 30*time.Minute {
		t.lastStatus = k.Time
		fmt.Fprintf(t.w, "%s\t── %d replicas in total\t\t%s\t\t\n", clock, total, orNone(strings.Join(hot, ", ")))
	}
	t.w.Flush()
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
