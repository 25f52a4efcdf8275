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
	metrics.SetConfig(cfg.Namespace, cfg.Policy)
	// The API says what this is: decisions applied to a simulated
	// cluster, not to a real one.
	history := record.NewHistory(Mode, 2000)
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
	if srv.HealthAddr != "" {
		fmt.Fprintf(o.Out, "serving /healthz and /readyz on http://%s\n", srv.HealthAddr)
	}
	fmt.Fprintf(o.Out, "embedded simulated ELMA365 cluster: scenario %s (%s of load, %d services) at %g× speed\n\n",
		sc.Name, sc.Duration, len(cfg.Services), o.Speedup)
	table := newTable(o.Out, cfg)

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
	col := newSourceMetrics(o.Registry, cluster, cfg)
	err = runDemo(runCtx, sc, cluster, col, cfg, o, loop.Recorders{metrics, history, health}, table, &sum, stop)
	table.finish()
	finish(o.Out, &sum)
	// Stopped by its Duration or by the user: not a failure.
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return sum, err
}

func runDemo(ctx context.Context, sc *simulations.Scenario, cluster *simulations.Cluster, col loop.Collector, cfg *config.Config, o Options,
	rec loop.Recorder, table *table, sum *Summary, extra func(loop.Tick)) error {
	l := &loop.Loop{
		Config:    func() *config.Config { return cfg },
		Collector: col,
		Scaler:    cluster,
		Recorder:  rec,
	}
	return drive(ctx, sc, cluster, l, cfg.Interval, o.Speedup, table, func(t loop.Tick) {
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

// drive ticks the loop every interval of simulated time, Speedup times
// faster than the wall clock. Until the loop first has something to do it
// does not wait at all: a scenario that opens on a quiet night would
// otherwise show half a minute of unchanged totals before anything
// happens. The table says what was skipped.
func drive(ctx context.Context, sc *simulations.Scenario, c *simulations.Cluster, lp *loop.Loop, interval time.Duration, speedup float64,
	table *table, onTick func(loop.Tick)) error {
	if interval < time.Second || speedup <= 0 {
		return fmt.Errorf("interval must be >= 1s and speedup > 0")
	}
	period := max(time.Millisecond, time.Duration(float64(interval)/speedup))
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for c.Elapsed() < sc.Duration {
		if table.fastForwarding() {
			if err := ctx.Err(); err != nil {
				return err
			}
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ticker.C:
			}
		}
		c.Advance(interval)
		onTick(lp.RunOnce(ctx, c.Now()))
	}
	return nil
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

// Mode is what the demo's decisions API reports as its mode: decisions
// applied to the simulated cluster.
const Mode = "demo"

// table prints every change as it happens and, each simulated half hour, a
// status line, so a person can follow the day. Columns have fixed widths,
// so rows printed minutes apart still line up under the header.
type table struct {
	out        io.Writer
	format     string
	lastStatus time.Time
	bottleneck map[string]bool
	// Fast-forwarding lasts until the first row: the quiet ticks before it
	// are counted, not waited for.
	forwarding          bool
	skipped             int
	skipFrom, skipUntil time.Time
	skipTotal           int32
}

const (
	replicasWidth = len("100 → 100")
	limitWidth    = len("stabilization")
)

func newTable(out io.Writer, cfg *config.Config) *table {
	svc := len("SERVICE")
	for _, s := range cfg.Services {
		svc = max(svc, len(s.Name))
	}
	t := &table{
		out:        out,
		format:     fmt.Sprintf("%%-8s  %%-%ds  %%-%ds  %%-10s  %%-%ds  %%s\n", svc, replicasWidth, limitWidth),
		bottleneck: map[string]bool{},
		forwarding: true,
	}
	fmt.Fprintf(out, t.format, "TIME", "SERVICE", "REPLICAS", "BOTTLENECK", "LIMITED BY", "REASON")
	return t
}

func (t *table) fastForwarding() bool { return t.forwarding }

func (t *table) tick(k loop.Tick, total int32) {
	clock := k.Time.Format("15:04:05")
	var hot []string
	var rows []string
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
		rows = append(rows, fmt.Sprintf(t.format, clock, d.Service, fmt.Sprintf("%d → %d", d.Current, d.Desired), bn, limit, shorten(d.Reason, 140)))
	}
	if t.forwarding {
		if len(rows) == 0 {
			if t.skipped == 0 {
				t.skipFrom = k.Time
			}
			t.skipped++
			t.skipUntil, t.skipTotal = k.Time, total
			return
		}
		t.forwarding = false
		t.skipNote()
		t.lastStatus = k.Time
	}
	for _, r := range rows {
		fmt.Fprint(t.out, r)
	}
	if k.Time.Sub(t.lastStatus) >= 30*time.Minute {
		t.lastStatus = k.Time
		fmt.Fprintf(t.out, "%s  ── %d replicas in total; bottlenecks: %s\n", clock, total, orNone(strings.Join(hot, ", ")))
	}
}

// skipNote says what was fast-forwarded, if anything.
func (t *table) skipNote() {
	if t.skipped > 1 {
		fmt.Fprintf(t.out, "%s  ── fast-forwarded %s of simulated time from %s: %d ticks, %d replicas in total, nothing to change\n",
			t.skipUntil.Format("15:04:05"), t.skipUntil.Sub(t.skipFrom).Round(time.Minute), t.skipFrom.Format("15:04"), t.skipped, t.skipTotal)
	}
	t.skipped = 0
}

// finish ends a run that may have ended while fast-forwarding.
func (t *table) finish() {
	if t.forwarding {
		t.skipNote()
	}
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
