//go:build !noplots

package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var colorBlack = color.RGBA{0, 0, 0, 255}

// maxPoints bounds a line's points; longer series keep each bucket's
// maximum so that short spikes stay visible.
const maxPoints = 1500

// WritePlots draws the first seed's series of a scenario into dir, file
// names prefixed with prefix: load, p95 latency and queue wait per policy,
// and replicas per policy for every service some policy scaled.
func WritePlots(dir, prefix string, s *Scenario) ([]Plot, error) {
	if len(s.Runs) == 0 {
		return nil, nil
	}
	runs := s.Runs[0]
	sc := s.Scenario
	step := runs[0].Series.Step
	unit, unitName := time.Minute, "minutes"
	if sc.Duration > 4*time.Hour {
		unit, unitName = time.Hour, "hours"
	}
	var out []Plot
	save := func(p *plot.Plot, name, title string) error {
		file := prefix + name + ".png"
		p.Title.Text = title
		p.X.Label.Text = unitName
		p.X.Tick.Marker = integerTicks{}
		p.Add(plotter.NewGrid())
		if err := savePNG(p, 24*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, file)); err != nil {
			return fmt.Errorf("plot %s: %w", file, err)
		}
		out = append(out, Plot{Title: title, File: file})
		return nil
	}

	// Load: the same for every policy.
	p := plot.New()
	p.Y.Label.Text = "arrivals per second"
	k := 0
	for _, l := range sc.SLO.EndToEnd {
		addLine(p, "requests at "+l.Name, runs[0].Series.Values["load/"+l.Name], step, unit, k, false)
		k++
	}
	for _, q := range sc.Queues {
		addLine(p, "messages to "+q.Name, runs[0].Series.Values["load/"+q.Name], step, unit, k, false)
		k++
	}
	if err := save(p, "load", sc.Name+": load"); err != nil {
		return nil, err
	}

	perPolicy := func(name, title, ylabel, key string, log bool, slo float64) error {
		p := plot.New()
		p.Y.Label.Text = ylabel
		if log {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = logTicks{}
		} else {
			p.Y.Tick.Marker = integerTicks{}
		}
		series := make([]namedSeries, len(runs))
		for i, r := range runs {
			series[i] = namedSeries{r.Policy, r.Series.Values[key]}
		}
		for _, g := range identicalGroups(series) {
			l := addLine(p, g.name, g.values, step, unit, -2, log)
			styleFor(l, g.first)
		}
		if slo > 0 {
			n := len(runs[0].Series.Values[key])
			flat := make([]float64, n)
			for i := range flat {
				flat[i] = slo
			}
			l := addLine(p, "SLO", flat, step, unit, -1, log)
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		return save(p, name, title)
	}
	for _, l := range sc.SLO.EndToEnd {
		if err := perPolicy("p95-"+l.Name, sc.Name+": end-to-end p95 latency at "+l.Name, "seconds (log)", "p95/"+l.Name, true, l.P95.Seconds()); err != nil {
			return nil, err
		}
	}
	for _, q := range sc.SLO.Queues {
		if err := perPolicy("queue-wait-"+q.Name, sc.Name+": "+q.Name+" wait p95", "seconds (log)", "queueWait/"+q.Name, true, q.P95.Seconds()); err != nil {
			return nil, err
		}
	}
	// Replicas of every service some policy scaled, most scaled first.
	churn := map[string]int{}
	for _, r := range runs {
		for svc, n := range r.Scores.ScaleActionsByService {
			churn[svc] += n
		}
	}
	var scaled []string
	for svc := range churn {
		scaled = append(scaled, svc)
	}
	sort.Slice(scaled, func(i, j int) bool {
		if churn[scaled[i]] != churn[scaled[j]] {
			return churn[scaled[i]] > churn[scaled[j]]
		}
		return scaled[i] < scaled[j]
	})
	if len(scaled) > 4 {
		scaled = scaled[:4]
	}
	for _, svc := range scaled {
		if err := perPolicy("replicas-"+svc, sc.Name+": "+svc+" replicas", "replicas", "replicas/"+svc, false, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// policyStyle gives each policy a fixed, distinct look: elmascale bold.
var policyStyle = map[string]struct {
	c      color.RGBA
	width  float64
	dashed bool
}{
	"elmascale":   {color.RGBA{0x1f, 0x4e, 0xb4, 255}, 1.8, false},
	"preset":      {color.RGBA{0x7f, 0xb2, 0xf0, 255}, 1, false},
	"hpa":         {color.RGBA{0xe0, 0x7b, 0x00, 255}, 1, false},
	"keda":        {color.RGBA{0x2c, 0xa0, 0x2c, 255}, 1, false},
	"latency-hpa": {color.RGBA{0x94, 0x47, 0xbd, 255}, 1, false},
	"static":      {color.RGBA{0x99, 0x99, 0x99, 255}, 1, false},
	"oracle":      {color.RGBA{0, 0, 0, 255}, 1, true},
}

func styleFor(l *plotter.Line, policy string) {
	st, ok := policyStyle[policy]
	if !ok {
		return
	}
	l.Color = st.c
	l.Width = vg.Points(st.width)
	if st.dashed {
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
	}
}

// addLine adds a series as a line, downsampled by bucket maxima. Color
// index -1 draws in black, -2 leaves the style to the caller. On a log
// axis values are floored at 1 ms. NaN and infinite values are left out of
// their bucket; a bucket with none left is drawn at 0 (at 1 ms on a log
// axis), so a broken series draws rather than failing the report.
func addLine(p *plot.Plot, name string, v []float64, step, unit time.Duration, color int, log bool) *plotter.Line {
	n := len(v)
	per := max(1, (n+maxPoints-1)/maxPoints)
	pts := make(plotter.XYs, 0, n/per+1)
	for i := 0; i < n; i += per {
		m := math.Inf(-1)
		for j := i; j < i+per && j < n; j++ {
			if !math.IsNaN(v[j]) && !math.IsInf(v[j], 0) {
				m = math.Max(m, v[j])
			}
		}
		if math.IsInf(m, -1) {
			m = 0
		}
		if log {
			m = math.Max(m, 0.001)
		}
		x := float64(time.Duration(i+1)*step) / float64(unit)
		pts = append(pts, plotter.XY{X: x, Y: m})
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		// Only NaN or infinite values make NewLine fail, and none are left.
		l = &plotter.Line{LineStyle: plotter.DefaultLineStyle}
	}
	l.Width = vg.Points(1)
	switch {
	case color >= 0:
		l.Color = plotutil.Color(color)
		l.Dashes = plotutil.Dashes(color / len(plotutil.DefaultColors))
	case color == -1:
		l.Color = colorBlack
	}
	p.Add(l)
	p.Legend.Add(name, l)
	return l
}

// savePNG draws the plot with its legend in a column to the right of the
// axes, where it can never cover a line.
func savePNG(p *plot.Plot, w, h vg.Length, file string) error {
	img := vgimg.New(w, h)
	c := draw.New(img)
	plotArea, legendArea := layout(p, c)
	legend := p.Legend
	p.Legend = plot.NewLegend()
	p.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: plotArea})
	p.Legend = legend
	if legendArea.Size().X > 0 {
		legend.Top, legend.Left = true, true
		legend.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: legendArea})
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// layout splits the canvas into the plot's area and, to its right, the
// legend's column, as wide as the longest entry (at most half the width).
// The legend starts below the title, level with the top of the axes.
func layout(p *plot.Plot, c draw.Canvas) (plotArea, legendArea vg.Rectangle) {
	plotArea = c.Rectangle
	r := p.Legend.Rectangle(c)
	width := r.Size().X
	if width == 0 {
		return plotArea, vg.Rectangle{}
	}
	pad := vg.Points(8)
	width = min(width+pad, c.Size().X/2)
	plotArea.Max.X -= width
	legendArea = vg.Rectangle{Min: vg.Point{X: plotArea.Max.X + pad, Y: c.Min.Y}, Max: c.Max}
	if p.Title.Text != "" {
		legendArea.Max.Y -= p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
	}
	return plotArea, legendArea
}

// integerTicks marks whole numbers only, for counts such as replicas: a
// step of 1, 2 or 5 times a power of ten giving at most about eight labels.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	if math.IsNaN(lo) || math.IsNaN(hi) || hi < lo {
		return nil
	}
	step := 1.0
	for k := 0; (hi-lo)/step > 8 && k < 60; k++ {
		switch m := step / math.Pow10(int(math.Floor(math.Log10(step)))); {
		case m < 1.5:
			step *= 2
		case m < 3:
			step = step / 2 * 5
		default:
			step *= 2
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ticks
}

// logTicks marks 1 to 9 times each power of ten on a log axis. Powers of
// ten are labelled; a range of two decades or less also labels 2 and 5
// times them, a range too short to show two of those labels every tick, so
// a latency axis within one decade still reads (0.2, 0.3, 0.5, …), and a
// range between two such ticks its ends.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 0) {
		return nil
	}
	var all []float64
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow10(e)
			if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
				all = append(all, v)
			}
		}
	}
	label := func(keep func(m int) bool) ([]plot.Tick, int) {
		ticks := make([]plot.Tick, len(all))
		n := 0
		for i, v := range all {
			ticks[i].Value = v
			e := int(math.Floor(math.Log10(v) + 1e-9))
			m := int(math.Round(v / math.Pow10(e)))
			if keep(m) {
				// m × 10^e printed from its digit: 0.7, not 0.7000000000000001.
				ticks[i].Label = strconv.FormatFloat(v, 'f', max(0, -e), 64)
				n++
			}
		}
		return ticks, n
	}
	decades := math.Log10(hi / lo)
	ticks, n := label(func(m int) bool { return m == 1 })
	if decades <= 2 || n < 2 {
		ticks, n = label(func(m int) bool { return m == 1 || m == 2 || m == 5 })
	}
	if n < 2 {
		ticks, n = label(func(int) bool { return true })
	}
	if n < 2 {
		// No two of 1…9 × 10^k fall in the range: label its ends.
		ticks = append(ticks, plot.Tick{Value: lo, Label: strconv.FormatFloat(lo, 'g', 2, 64)},
			plot.Tick{Value: hi, Label: strconv.FormatFloat(hi, 'g', 2, 64)})
	}
	return ticks
}

type namedSeries struct {
	name   string
	values []float64
}

// seriesGroup is one line drawn for policies whose series are identical:
// drawn once, in the first one's style, and named for all of them, since
// the later lines would only hide under the first.
type seriesGroup struct {
	name, first string
	values      []float64
}

func identicalGroups(series []namedSeries) []seriesGroup {
	var groups []seriesGroup
	var members [][]string
	for _, s := range series {
		found := false
		for i, g := range groups {
			if slices.Equal(g.values, s.values) {
				members[i] = append(members[i], s.name)
				found = true
				break
			}
		}
		if !found {
			groups = append(groups, seriesGroup{name: s.name, first: s.name, values: s.values})
			members = append(members, []string{s.name})
		}
	}
	for i := range groups {
		if len(members[i]) > 1 {
			groups[i].name = strings.Join(members[i], " = ") + " (identical)"
		}
	}
	return groups
}
