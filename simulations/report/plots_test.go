//go:build !noplots

package report

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Verifies a replica axis is marked at whole numbers only, at a sensible
// density, whatever its range.
func TestIntegerTicks(t *testing.T) {
	for _, r := range [][2]float64{{0, 25}, {2.5, 22.5}, {1, 3}, {0, 140}, {0, 4}} {
		ticks := integerTicks{}.Ticks(r[0], r[1])
		if len(ticks) < 2 || len(ticks) > 9 {
			t.Errorf("%v: %d ticks", r, len(ticks))
		}
		for _, tk := range ticks {
			if tk.Value != math.Trunc(tk.Value) || tk.Label == "" {
				t.Errorf("%v: tick %v %q is not a labelled integer", r, tk.Value, tk.Label)
			}
		}
	}
}

func labels(ticks []plot.Tick) []string {
	var out []string
	for _, tk := range ticks {
		if tk.Label != "" {
			out = append(out, tk.Label)
		}
	}
	return out
}

// Verifies a log latency axis within one decade carries several labels (not
// only "1"), and a wide one labels the powers of ten.
func TestLogTicksWithinOneDecade(t *testing.T) {
	if got := labels(logTicks{}.Ticks(0.3, 2.5)); len(got) < 3 {
		t.Errorf("0.3–2.5 s: labels %v", got)
	}
	for _, l := range labels(logTicks{}.Ticks(0.0003, 0.9)) {
		if len(l) > 6 {
			t.Errorf("label %q is not short", l)
		}
	}
	if got := labels(logTicks{}.Ticks(0.12, 0.18)); len(got) < 2 {
		t.Errorf("0.12–0.18 s: labels %v", got)
	}
	got := labels(logTicks{}.Ticks(0.001, 100))
	if len(got) != 6 || got[0] != "0.001" || got[5] != "100" {
		t.Errorf("0.001–100 s: labels %v", got)
	}
	if (logTicks{}).Ticks(0, 1) != nil || (logTicks{}).Ticks(math.NaN(), 1) != nil {
		t.Error("a range a log axis cannot have gives ticks")
	}
}

// Verifies policies with identical series are drawn once and the legend
// names all of them.
func TestIdenticalSeriesNamedTogether(t *testing.T) {
	a, b := []float64{1, 2, 3}, []float64{1, 2, 4}
	g := identicalGroups([]namedSeries{{"hpa", a}, {"elmascale", b}, {"keda", append([]float64(nil), a...)}, {"static", b}})
	if len(g) != 2 || g[0].name != "hpa = keda (identical)" || g[0].first != "hpa" || g[1].name != "elmascale = static (identical)" {
		t.Fatalf("groups %+v", g)
	}
	if g := identicalGroups([]namedSeries{{"hpa", a}, {"elmascale", b}}); g[0].name != "hpa" || g[1].name != "elmascale" {
		t.Errorf("distinct series renamed: %+v", g)
	}
}

// Verifies the legend has its own column beside the axes, so it cannot
// cover a line, and a plot with NaN in a series still saves.
func TestLegendBesideTheData(t *testing.T) {
	p := plot.New()
	p.Title.Text = "replicas"
	addLine(p, "elmascale", []float64{1, 5, math.NaN(), 9}, time.Minute, time.Minute, 0, false)
	addLine(p, "latency-hpa = keda (identical)", []float64{2, 2, 2, 2}, time.Minute, time.Minute, 1, false)
	c := draw.New(vgimg.New(24*vg.Centimeter, 10*vg.Centimeter))
	plotArea, legendArea := layout(p, c)
	if legendArea.Size().X <= 0 || legendArea.Min.X < plotArea.Max.X {
		t.Fatalf("legend %v overlaps the plot %v", legendArea, plotArea)
	}
	if plotArea.Size().X < c.Size().X/2 {
		t.Errorf("the plot keeps only %v of %v", plotArea.Size().X, c.Size().X)
	}
	if err := savePNG(p, 24*vg.Centimeter, 10*vg.Centimeter, filepath.Join(t.TempDir(), "p.png")); err != nil {
		t.Fatal(err)
	}
}
