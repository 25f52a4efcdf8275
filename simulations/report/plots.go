//go:build !noplots

package report

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
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
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		if err := p.Save(22*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, file)); err != nil {
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
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		for _, r := range runs {
			l := addLine(p, r.Policy, r.Series.Values[key], step, unit, -2, log)
			styleFor(l, r.Policy)
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
		if err := perPolicy("replicas-"+svc, sc.Name+": "+svc+" replicas", "pods", "replicas/"+svc, false, 0); err != nil {
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
// axis values are floored at 1 ms.
func addLine(p *plot.Plot, name string, v []float64, step, unit time.Duration, color int, log bool) *plotter.Line {
	n := len(v)
	per := max(1, (n+maxPoints-1)/maxPoints)
	pts := make(plotter.XYs, 0, n/per+1)
	for i := 0; i < n; i += per {
		m := math.Inf(-1)
		for j := i; j < i+per && j < n; j++ {
			m = math.Max(m, v[j])
		}
		if log {
			m = math.Max(m, 0.001)
		}
		x := float64(time.Duration(i+1)*step) / float64(unit)
		pts = append(pts, plotter.XY{X: x, Y: m})
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		// Only NaN or infinite values make NewLine fail; the series have none.
		panic(err)
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
