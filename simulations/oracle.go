package simulations

import (
	"math"
	"time"
)

// Oracle is the offline reference: with perfect foresight of the load, the
// fewest replicas per service and time step that meet the SLOs, started
// early enough to be ready in time. It is the floor every policy is
// measured against, not a policy anyone can run.
//
// How it is computed, per service and step of OracleStep:
//
//  1. Arrival rates come from the load profiles and their noise exactly
//     as the simulation draws them, propagated along the call graph
//     (each edge multiplies by its mean calls) and into the queues.
//  2. Synchronous work is an M/M/c queue with c = replicas × slots: the
//     oracle takes the fewest replicas for which at most 5% of requests
//     wait longer than a quarter of the mean service time (Erlang C), so
//     the p95 latency stays at the service's no-queueing p95.
//  3. Queue work may wait up to half the queue's wait SLO: the consumer
//     needs slots for the message rate averaged over that much of the
//     past, at 90% utilization, on top of its synchronous work.
//  4. The count is bounded like the policy's (min, max, pinned at one).
//  5. Start-up: a pod must be started its start-up delay (plus one step)
//     before it is needed, so the count at a step is the largest need
//     over the steps up to that delay ahead. Scale-downs are immediate.
type Oracle struct {
	// Step is the schedule's resolution.
	Step time.Duration
	// Replicas[service][step] is the count to hold during step k.
	Replicas map[string][]int32
}

// OracleStep is the oracle schedule's resolution.
const OracleStep = 10 * time.Second

// NewOracle computes the oracle schedule of a scenario for a seed.
func NewOracle(sc *Scenario, seed uint64) *Oracle {
	steps := int(sc.Duration / OracleStep)
	stepSec := int(OracleStep / time.Second)
	nS, nQ := len(sc.Services), len(sc.Queues)
	order := topoOrder(sc)

	// Peak rates per step (rates sampled each second of the step).
	svcRate := make([][]float64, nS)
	qRate := make([][]float64, nQ)
	for i := range svcRate {
		svcRate[i] = make([]float64, steps)
	}
	for i := range qRate {
		qRate[i] = make([]float64, steps)
	}
	lam := make([]float64, nS)
	qlam := make([]float64, nQ)
	load := sc.NewLoad(seed)
	qSum := make([][]float64, nQ) // mean rate per step, for the smoothing
	for i := range qSum {
		qSum[i] = make([]float64, steps)
	}
	for k := 0; k < steps; k++ {
		for sec := 0; sec < stepSec; sec++ {
			t := time.Duration(k*stepSec+sec)*time.Second + time.Second/2
			clear(lam)
			clear(qlam)
			for i, l := range sc.Load {
				r := load.Rate(i, t)
				if l.Service != "" {
					lam[sc.ServiceIndex(l.Service)] += r
				} else {
					qlam[sc.QueueIndex(l.Queue)] += r
				}
			}
			for _, i := range order {
				for _, c := range sc.Services[i].Calls {
					lam[sc.ServiceIndex(c.Service)] += lam[i] * c.Mean
				}
				for _, p := range sc.Services[i].Publishes {
					qlam[sc.QueueIndex(p.Queue)] += lam[i] * p.Mean
				}
			}
			for i := range lam {
				svcRate[i][k] = math.Max(svcRate[i][k], lam[i])
			}
			for i := range qlam {
				qRate[i][k] = math.Max(qRate[i][k], qlam[i])
				qSum[i][k] += qlam[i] / float64(stepSec)
			}
		}
	}

	waitSLO := map[string]time.Duration{}
	for _, l := range sc.SLO.Queues {
		waitSLO[l.Name] = l.P95
	}
	o := &Oracle{Step: OracleStep, Replicas: map[string][]int32{}}
	for i := range sc.Services {
		m := &sc.Services[i]
		minR, maxR, managed := m.Replicas, m.Replicas, false
		for _, ps := range sc.Elmascale.Policy.Services {
			if ps.Name == m.Name {
				minR, maxR, managed = ps.MinReplicas, ps.MaxReplicas, true
				if ps.Pinned {
					minR, maxR = 1, 1
				}
			}
		}
		if m.SingleInstance {
			minR, maxR = 1, 1
		}
		need := make([]int32, steps)
		for k := 0; k < steps; k++ {
			if !managed || minR == maxR {
				need[k] = minR
				continue
			}
			// Slots for queue work, from the recent mean message rate.
			var msgSlots float64
			for _, qn := range m.Consumes {
				qi := sc.QueueIndex(qn)
				q := &sc.Queues[qi]
				span := waitSLO[qn] / 2
				if span <= 0 {
					span = 30 * time.Second
				}
				n := max(1, int(span/OracleStep))
				var sum float64
				for j := max(0, k-n+1); j <= k; j++ {
					sum += qSum[qi][j]
				}
				msgSlots += sum / float64(n) * q.ServiceTime.MeanSeconds() / 0.9
			}
			r := syncReplicas(svcRate[i][k], m.ServiceTime.MeanSeconds(), m.Slots, msgSlots)
			need[k] = min(max(r, minR), maxR)
		}
		// Start early enough: hold the largest need within the start-up ahead.
		ahead := int((m.Startup+m.StartupJitter)/OracleStep) + 1
		sched := make([]int32, steps)
		for k := range need {
			v := need[k]
			for j := k + 1; j <= k+ahead && j < steps; j++ {
				v = max(v, need[j])
			}
			sched[k] = v
		}
		o.Replicas[m.Name] = sched
	}
	return o
}

// syncReplicas is the fewest replicas of slots each for which, after
// msgSlots are given to queue work, an M/M/c queue with arrival rate lam
// and mean service time s keeps P(wait > s/4) at or below 5%.
func syncReplicas(lam, s float64, slots int32, msgSlots float64) int32 {
	a := lam * s // offered load in slots
	if a <= 0 {
		return max(1, int32(math.Ceil(msgSlots/float64(slots))))
	}
	r := max(1, int32((a+msgSlots)/float64(slots)))
	for ; r < 100000; r++ {
		c := int(float64(r*slots) - msgSlots)
		if c <= 0 || float64(c) <= a {
			continue
		}
		if erlangC(c, a)*math.Exp(-(float64(c)/s-lam)*s/4) <= 0.05 {
			return r
		}
	}
	return r
}

// erlangC is the probability of waiting in an M/M/c queue with offered
// load a (< c), by the numerically stable Erlang B recursion.
func erlangC(c int, a float64) float64 {
	b := 1.0
	for n := 1; n <= c; n++ {
		b = a * b / (float64(n) + a*b)
	}
	rho := a / float64(c)
	return b / (1 - rho*(1-b))
}

// topoOrder lists services callers first.
func topoOrder(sc *Scenario) []int {
	n := len(sc.Services)
	state := make([]uint8, n)
	out := make([]int, 0, n)
	var visit func(i int)
	visit = func(i int) {
		if state[i] != 0 {
			return
		}
		state[i] = 1
		for _, c := range sc.Services[i].Calls {
			visit(sc.ServiceIndex(c.Service))
		}
		state[i] = 2
		out = append(out, i)
	}
	for i := 0; i < n; i++ {
		visit(i)
	}
	// Post-order puts callees first; reverse it.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// at returns the oracle's count for a service at elapsed time t.
func (o *Oracle) at(service string, t time.Duration) (int32, bool) {
	s, ok := o.Replicas[service]
	if !ok || len(s) == 0 {
		return 0, false
	}
	k := min(int(t/o.Step), len(s)-1)
	return s[k], true
}
