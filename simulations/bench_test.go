package simulations

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkElma365Day runs the 24-hour working day under elmascale, the
// daemon's loop and policy included, and reports simulated events per
// second of wall time and the wall seconds one day takes.
func BenchmarkElma365Day(b *testing.B) {
	sc, err := LoadShipped("elma365-day")
	if err != nil {
		b.Fatal(err)
	}
	p, err := BuildPolicy(sc, PolicyElmascale, sc.Seed)
	if err != nil {
		b.Fatal(err)
	}
	var events uint64
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := Run(context.Background(), sc, p, sc.Seed)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events
	}
	wall := time.Since(start).Seconds()
	b.ReportMetric(float64(events)/wall, "events/s")
	b.ReportMetric(wall/float64(b.N), "s/day")
}

// BenchmarkElma365Week runs a simulated week (five working days and a
// weekend) of the ELMA365 cluster under the shipped preset, the daemon's
// loop and policy included, and reports events per second and the wall
// seconds one week takes. Run it on one core:
//
//	go test -run '^$' -bench Elma365Week -benchtime 1x -cpu 1 ./simulations/
func BenchmarkElma365Week(b *testing.B) {
	sc, err := LoadScenarioFS(os.DirFS("."), "testdata/elma365-week.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p, err := BuildPolicy(sc, PolicyPreset, sc.Seed)
	if err != nil {
		b.Fatal(err)
	}
	var events uint64
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := Run(context.Background(), sc, p, sc.Seed)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events
	}
	wall := time.Since(start).Seconds()
	b.ReportMetric(float64(events)/wall, "events/s")
	b.ReportMetric(wall/float64(b.N), "s/week")
}
