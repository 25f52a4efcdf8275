package dashboard_test

import (
	"context"
	"testing"
	"time"

	"github.com/elmascale/elmascale/dashboard"
	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/simulations/demo"
)

// Verifies, end to end, that the dashboard pointed at the demo (a real
// Prometheus scraping `elmascale run` with no cluster, through a script
// storm) has data in every panel, its source panels included: at least one of each panel's queries,
// each annotation and each variable returns points over the run.
func TestDashboardFilledByTheDemo(t *testing.T) {
	if _, err := promtest.Binary(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		// Two hours of script storm in about 30 s of wall time.
		_, err := demo.Run(runCtx, demo.Options{Scenario: "script-storm", Seed: 1, Speedup: 240,
			MetricsAddr: "127.0.0.1:0", OnListen: func(m, _ string) { addr <- m }, Version: "e2e"})
		done <- err
	}()
	var metricsAddr string
	select {
	case metricsAddr = <-addr:
	case err := <-done:
		t.Fatalf("the demo did not start: %v", err)
	}
	start := time.Now()
	prom := promtest.Start(t, promtest.Target{Job: "elmascale", Addr: metricsAddr,
		Labels: map[string]string{"namespace": "elmascale", "pod": "elmascale-0"}})
	prom.WaitForTargets()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the demo did not finish")
	}
	end := time.Now()

	filled := map[string]bool{}
	var panels []string
	for _, q := range dashboard.Queries() {
		if _, seen := filled[q.Panel]; !seen {
			filled[q.Panel] = false
			panels = append(panels, q.Panel)
		}
		// The managed namespace, as a person would pick it.
		expr := expand(q.Expr, "elma365")
		n, err := rangeSamples(ctx, prom.URL, expr, start, end)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.Panel, err, expr)
			continue
		}
		if n > 0 {
			filled[q.Panel] = true
		}
	}
	for _, p := range panels {
		if !filled[p] {
			t.Errorf("%s: no data from the demo", p)
		}
	}
}
