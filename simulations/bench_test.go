package simulations

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkElma365Day runs the 24-hour working day under elmascale, the
// daemon's loop and policy included. See benchRuns for what it reports.
func BenchmarkElma365Day(b *testing.B) {
	sc, err := LoadShipped("elma365-day")
	if err != nil {
		b.Fatal(err)
	}
	p, err := BuildPolicy(sc, PolicyElmascale, sc.Seed)
	if err != nil {
		b.Fatal(err)
	}
	benchRuns(b, sc, p, "day")
}

// BenchmarkElma365Week runs a simulated week (five working days and a
// weekend) of the ELMA365 cluster under the shipped preset, the daemon's
// loop and policy included. Run it on one core:
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
	benchRuns(b, sc, p, "week")
}

// benchRuns runs the scenario b.N times and reports simulated events per
// second of wall time (events/s), simulated seconds per wall second
// (sim-s/s), and the wall and the CPU seconds one run takes (s/unit,
// cpu-s/unit). On a shared machine the wall time also counts the time the
// process waited for a core; the CPU time (user and system, the garbage
// collector's included) counts only the work, so it is the figure to
// compare between changes.
func benchRuns(b *testing.B, sc *Scenario, p Policy, unit string) {
	var events uint64
	cpu0 := cpuSeconds()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := Run(context.Background(), sc, p, sc.Seed)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events
	}
	wall := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	n := float64(b.N)
	b.ReportMetric(float64(events)/wall, "events/s")
	b.ReportMetric(sc.Duration.Seconds()*n/wall, "sim-s/s")
	b.ReportMetric(wall/n, "s/"+unit)
	if cpu > 0 {
		b.ReportMetric(cpu/n, "cpu-s/"+unit)
	}
}

// cpuSeconds is the CPU time the process has used, 0 where it cannot be
// read.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
