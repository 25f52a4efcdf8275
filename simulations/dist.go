package simulations

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// DistKind names a service-time distribution.
type DistKind string

// The distributions.
const (
	DistExponential DistKind = "exponential"
	DistLognormal   DistKind = "lognormal"
	DistConstant    DistKind = "constant"
)

// Dist is a service-time distribution given by its mean and coefficient of
// variation (lognormal), or its mean alone (exponential, constant).
type Dist struct {
	Kind DistKind
	Mean time.Duration
	CV   float64

	mean, mu, sigma float64 // seconds; lognormal parameters
	// tab is the lognormal's quantile function at i/lnBins, i = 0…lnBins,
	// for drawing by table (see draw); an array, so that indexing it by
	// the top 10 bits of a draw needs no bounds check.
	tab *[lnBins + 1]float64
}

// lnBins is the resolution of the lognormal quantile table: a draw
// interpolates linearly between quantiles 1/1024 apart, except in the two
// outermost bins, which are drawn exactly so the tails keep their shape.
const lnBins = 1024

func compileDist(f distFile) (Dist, error) {
	d := Dist{Kind: DistKind(f.Kind), Mean: f.Mean.D(), CV: 1}
	if d.Kind == "" {
		d.Kind = DistLognormal
	}
	if f.CV != nil {
		d.CV = *f.CV
	}
	if d.Mean <= 0 {
		return d, errors.New("mean: must be > 0")
	}
	switch d.Kind {
	case DistExponential:
		d.CV = 1
	case DistConstant:
		d.CV = 0
	case DistLognormal:
		if d.CV <= 0 || d.CV > 10 {
			return d, errors.New("cv: must be in (0, 10]")
		}
	default:
		return d, errors.New("dist: must be lognormal, exponential or constant")
	}
	d.init()
	return d, nil
}

func (d *Dist) init() {
	d.mean = d.Mean.Seconds()
	if d.Kind == DistLognormal {
		s2 := math.Log1p(d.CV * d.CV)
		d.sigma = math.Sqrt(s2)
		d.mu = math.Log(d.mean) - s2/2
		d.tab = new([lnBins + 1]float64)
		for i := 1; i < lnBins; i++ {
			d.tab[i] = d.quantile(float64(i) / lnBins)
		}
	}
}

// quantile is the lognormal's exact quantile function.
func (d *Dist) quantile(u float64) float64 {
	return math.Exp(d.mu + d.sigma*math.Sqrt2*math.Erfinv(2*u-1))
}

// MeanSeconds is the mean in seconds.
func (d *Dist) MeanSeconds() float64 { return d.Mean.Seconds() }

// draw returns a service time in seconds, never below a microsecond.
func (d *Dist) draw(r *rand.Rand) float64 {
	switch d.Kind {
	case DistExponential:
		return atLeast(r.ExpFloat64()*d.mean, 1e-6)
	case DistConstant:
		return atLeast(d.mean, 1e-6)
	}
	return d.lognormal(r.Uint64())
}

// drawKeyed is draw from a request's key stream: k is the source behind
// r, read directly for a lognormal (the usual service time) so the hot
// path makes no call through the rand.Source interface. It returns what
// draw(r) would.
func (d *Dist) drawKeyed(k *keySource, r *rand.Rand) float64 {
	if d.Kind == DistLognormal {
		return d.lognormal(k.Uint64())
	}
	return d.draw(r)
}

// lognormal maps 64 random bits to a lognormal draw: one uniform through
// the quantile table (an exp per draw was the simulator's largest single
// cost).
func (d *Dist) lognormal(u uint64) float64 {
	i := u >> (64 - 10)
	f := float64(u<<10>>11) / (1 << 53)
	if i == 0 || i == lnBins-1 {
		return atLeast(d.quantile((float64(i)+f)/lnBins), 1e-6)
	}
	return atLeast(d.tab[i]+f*(d.tab[i+1]-d.tab[i]), 1e-6)
}

// atLeast is math.Max(x, lo) for a positive lo, NaN and infinities
// included, without the call math.Max makes on amd64.
func atLeast(x, lo float64) float64 {
	if x < lo {
		return lo
	}
	return x
}
