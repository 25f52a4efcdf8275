package simulations

import (
	"context"
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
