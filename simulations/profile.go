package simulations

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Profile is a load shape: the mean arrival rate (per second) at a time
// since the start of the scenario.
type Profile interface {
	Rate(t time.Duration) float64
}

// Piecewise interpolates linearly between points; before the first and
// after the last it holds their values. With Repeat > 0 it is periodic.
// Two points at the same time make a step.
type Piecewise struct {
	At     []time.Duration
	RPS    []float64
	Repeat time.Duration
	Scale  float64
}

// Rate implements Profile.
func (p *Piecewise) Rate(t time.Duration) float64 {
	if p.Repeat > 0 {
		t %= p.Repeat
	}
	n := len(p.At)
	// The last point whose time is <= t (so a step takes the later value).
	i := sort.Search(n, func(i int) bool { return p.At[i] > t }) - 1
	var v float64
	switch {
	case i < 0:
		v = p.RPS[0]
	case i >= n-1:
		v = p.RPS[n-1]
	default:
		span := p.At[i+1] - p.At[i]
		f := float64(t-p.At[i]) / float64(span)
		v = p.RPS[i] + f*(p.RPS[i+1]-p.RPS[i])
	}
	return v * p.Scale
}

// Sine is mean + amplitude·sin(2π(t−phase)/period), never below zero.
type Sine struct {
	Mean, Amplitude float64
	Period, Phase   time.Duration
	Scale           float64
}

// Rate implements Profile.
func (s *Sine) Rate(t time.Duration) float64 {
	x := 2 * math.Pi * float64(t-s.Phase) / float64(s.Period)
	return math.Max(0, s.Mean+s.Amplitude*math.Sin(x)) * s.Scale
}

func compileProfile(l loadFile, fsys fs.FS, dir string) (Profile, error) {
	scale := 1.0
	if l.Scale != nil {
		scale = *l.Scale
		if scale < 0 {
			return nil, errors.New("scale: must be >= 0")
		}
	}
	kinds := 0
	for _, set := range []bool{len(l.Points) > 0, l.Sine != nil, l.CSV != "", l.Constant != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, errors.New("set exactly one of points, sine, csv, constant")
	}
	switch {
	case l.Constant != nil:
		if *l.Constant < 0 {
			return nil, errors.New("constant: must be >= 0")
		}
		return &Piecewise{At: []time.Duration{0}, RPS: []float64{*l.Constant}, Scale: scale}, nil
	case l.Sine != nil:
		if l.Sine.Period <= 0 {
			return nil, errors.New("sine.period: must be > 0")
		}
		return &Sine{Mean: l.Sine.Mean, Amplitude: l.Sine.Amplitude, Period: l.Sine.Period.D(), Phase: l.Sine.Phase.D(), Scale: scale}, nil
	case l.CSV != "":
		p, err := readCSVTrace(fsys, path.Join(dir, l.CSV))
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		p.Scale, p.Repeat = scale, l.Repeat.D()
		return p, nil
	}
	p := &Piecewise{Scale: scale, Repeat: l.Repeat.D()}
	for i, pt := range l.Points {
		if pt.RPS < 0 {
			return nil, fmt.Errorf("points[%d].rps: must be >= 0", i)
		}
		if i > 0 && pt.At.D() < l.Points[i-1].At.D() {
			return nil, fmt.Errorf("points[%d].at: times must not decrease", i)
		}
		p.At = append(p.At, pt.At.D())
		p.RPS = append(p.RPS, pt.RPS)
	}
	return p, nil
}

// readCSVTrace reads "seconds,rps" rows (a header line and # comments are
// skipped) into a piecewise profile.
func readCSVTrace(fsys fs.FS, name string) (*Piecewise, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &Piecewise{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		txt := strings.TrimSpace(sc.Text())
		if txt == "" || strings.HasPrefix(txt, "#") {
			continue
		}
		parts := strings.Split(txt, ",")
		if len(parts) != 2 {
			return nil, fmt.Errorf("line %d: want seconds,rps", line)
		}
		sec, err1 := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
		rps, err2 := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
		if err1 != nil || err2 != nil {
			if len(p.At) == 0 && line == 1 {
				continue // header
			}
			return nil, fmt.Errorf("line %d: not numbers", line)
		}
		at := time.Duration(sec * float64(time.Second))
		if rps < 0 || (len(p.At) > 0 && at < p.At[len(p.At)-1]) {
			return nil, fmt.Errorf("line %d: rps must be >= 0 and times must not decrease", line)
		}
		p.At = append(p.At, at)
		p.RPS = append(p.RPS, rps)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(p.At) == 0 {
		return nil, errors.New("no rows")
	}
	return p, nil
}

// Noise multiplies a profile by a mean-one lognormal factor with the given
// coefficient of variation, drawn afresh every Period and interpolated
// linearly in between, so load wanders rather than jumps. Sources with the
// same Group share part of their noise: each knot's normal deviate is
// Correlation times the group's plus sqrt(1−Correlation²) times the
// source's own, so a busy minute at the gateway is a busy minute at the
// front end too (correlation of the log-factors ≈ Correlation² between two
// sources of the group; 1 makes them move together).
type Noise struct {
	CV          float64
	Period      time.Duration
	Group       string
	Correlation float64
}

// factor is the noise multiplier at t for a seed and source. It is a pure
// function of its arguments, so the reference sees exactly the load the
// simulation draws from.
func (n Noise) factor(seed uint64, source int, t time.Duration) float64 {
	if n.CV == 0 {
		return 1
	}
	k := int64(t / n.Period)
	frac := float64(t%n.Period) / float64(n.Period)
	a := n.knot(seed, source, k)
	b := n.knot(seed, source, k+1)
	return a + frac*(b-a)
}

func (n Noise) knot(seed uint64, source int, k int64) float64 {
	sigma2 := math.Log1p(n.CV * n.CV)
	sigma := math.Sqrt(sigma2)
	z := normalAt(seed ^ splitmix(uint64(source)+0x9e37) ^ splitmix(uint64(k)*0x632be59bd9b4e019))
	if n.Correlation > 0 {
		g := normalAt(seed ^ splitmix(hashString(n.Group)) ^ splitmix(uint64(k)*0x632be59bd9b4e019))
		z = n.Correlation*g + math.Sqrt(1-n.Correlation*n.Correlation)*z
	}
	return math.Exp(sigma*z - sigma2/2)
}

// normalAt is a standard normal deviate drawn from a hash (Box–Muller).
func normalAt(x uint64) float64 {
	h := splitmix(x)
	u1 := (float64(h>>11) + 0.5) / (1 << 53)
	u2 := (float64(splitmix(h)>>11) + 0.5) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

func hashString(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 0x100000001b3
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Load is a scenario's external load for one seed: every source's rate at
// any time, its profile times its noise times its bursts. It is what every
// policy of the seed faces, and what the reference plans with.
type Load struct {
	sc   *Scenario
	seed uint64
	// bursts[i] are source i's bursts in time order.
	bursts [][]burst
	next   []int // per source, the first burst that may still matter
	last   []time.Duration
}

type burst struct {
	from, to time.Duration
	factor   float64
}

// NewLoad draws the seed's bursts and returns its load.
func (sc *Scenario) NewLoad(seed uint64) *Load {
	l := &Load{sc: sc, seed: seed, bursts: make([][]burst, len(sc.Load)), next: make([]int, len(sc.Load)), last: make([]time.Duration, len(sc.Load))}
	for i := range sc.Load {
		b := sc.Load[i].Bursts
		if b == nil {
			continue
		}
		r := rand.New(rand.NewPCG(seed, 0xb0b5_0000+uint64(i)))
		sigma2 := math.Log1p(b.FactorCV * b.FactorCV)
		for t := time.Duration(0); ; {
			t += time.Duration(r.ExpFloat64() * float64(b.Every))
			if t >= sc.Duration {
				break
			}
			d := time.Duration(b.Duration.draw(r) * float64(time.Second))
			f := b.Factor
			if b.FactorCV > 0 {
				f = math.Max(1, b.Factor*math.Exp(math.Sqrt(sigma2)*r.NormFloat64()-sigma2/2))
			}
			l.bursts[i] = append(l.bursts[i], burst{from: t, to: t + d, factor: f})
		}
	}
	return l
}

// Bursts lists source i's bursts for the seed as [from, to) and factor.
func (l *Load) Bursts(i int) (from, to []time.Duration, factor []float64) {
	for _, b := range l.bursts[i] {
		from, to, factor = append(from, b.from), append(to, b.to), append(factor, b.factor)
	}
	return from, to, factor
}

// Rate is source i's mean arrival rate at t. Queried at times that do not
// decrease it takes constant time; earlier times are answered too.
func (l *Load) Rate(i int, t time.Duration) float64 {
	src := &l.sc.Load[i]
	r := src.Profile.Rate(t) * src.Noise.factor(l.seed, i, t)
	bs := l.bursts[i]
	if len(bs) == 0 {
		return r
	}
	k := l.next[i]
	if t < l.last[i] {
		k = 0 // asked about an earlier time: search again
	}
	l.last[i] = t
	for k < len(bs) && bs[k].to <= t {
		k++
	}
	l.next[i] = k
	// Overlapping bursts multiply.
	for j := k; j < len(bs) && bs[j].from <= t; j++ {
		if t < bs[j].to {
			r *= bs[j].factor
		}
	}
	return r
}

// SourceRate is the mean arrival rate of the scenario's load source i at t
// for a seed, noise and bursts included. It draws the seed's bursts on
// every call; use NewLoad for many queries.
func (sc *Scenario) SourceRate(seed uint64, i int, t time.Duration) float64 {
	return sc.NewLoad(seed).Rate(i, t)
}
