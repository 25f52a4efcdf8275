package simulations

import (
	"context"
	"math"
	"time"
)

// Oracle is the reference every policy is measured against: a replica
// schedule per service and time step, computed offline with perfect
// foresight of the seed's load and then checked and repaired by replaying
// it in the simulator itself. It is not a policy anyone can run.
//
// How it is computed:
//
//  1. Which services the SLOs need: those an SLO names, those its requests
//     reach through calls, a queue SLO's consumer and what its messages
//     call. Every other service stays at its floor all run: the
//     reference never scales a service no SLO needs.
//  2. A first schedule, per OracleStep: arrival rates from the load (noise
//     and bursts exactly as the run draws them) propagated along calls,
//     publishes and scripts' calls; each needed service gets the fewest
//     replicas for which an M/M/c queue of its slots keeps P(wait > H/4)
//     at or below 5%, H being how long a request holds a slot (its own
//     work under the phase in force, plus, for a sync service, the
//     no-queueing time of its calls); queue consumers add slots for the
//     message rate averaged over half the queue's wait SLO at 90%
//     utilization. Pods start their start-up delay (plus a step) early,
//     and in a cluster that adds nodes the node-addition delay earlier
//     still, so a pod that waits for a node is ready when needed.
//  3. Repair by replay, up to OracleRepairs rounds: the schedule is run;
//     in every window that violates an SLO, each needed scalable service
//     whose requests waited for a slot (more than a quarter of a service
//     time on average), whose CPU limit lengthened its work (by more than
//     a quarter on average), or whose messages did (more of them in progress or
//     ready than its pods have slots, or a p95 wait above a quarter of a
//     message's work) gets 25% more replicas (at least one more, within
//     its bounds) from its start-up before the window to its end. The
//     schedule with the fewest violation seconds (then the fewest elastic
//     replica-seconds) seen is kept.
//
// What it guarantees, and how close it is to a lower bound: it is an
// upper bound on the fewest replicas that meet the SLOs, not a proven
// minimum. Its violation seconds are never more than the first
// schedule's; a window in which it still violates had, after the last
// round, no congested scalable service on the way (what breaks it is
// unrelievable: a saturated data store, a single-instance service, start-
// up, the tail of thin traffic) or outlasted the rounds. Scores call an
// SLO it misses in a window unavoidable in that window
// (Scores.RelievableViolationSeconds). A
// policy may spend fewer elastic replica-seconds than the reference (the
// M/M/c target is conservative), but no policy may beat it on both
// violation seconds and elastic replica-seconds: that would mean the
// repair missed a cheaper feasible schedule, and TestReferenceGuarantee
// fails on every shipped scenario where it happens.
type Oracle struct {
	// Step is the schedule's resolution.
	Step time.Duration
	// Replicas[service][step] is the count to hold during step k.
	Replicas map[string][]int32
	// Rounds is the number of repair rounds that changed the schedule.
	Rounds int
}

// OracleStep is the reference schedule's resolution.
const OracleStep = 10 * time.Second

// OracleRepairs bounds the replay-and-repair rounds.
const OracleRepairs = 4

// NewOracle computes the reference schedule of a scenario for a seed.
func NewOracle(sc *Scenario, seed uint64) *Oracle {
	o := firstSchedule(sc, seed)
	o.repair(sc, seed)
	return o
}

// neededServices marks the services some SLO needs (see Oracle).
func neededServices(sc *Scenario) []bool {
	need := make([]bool, len(sc.Services))
	mark := func(i int32) {
		for _, j := range reachable(sc, i) {
			need[j] = true
		}
	}
	for _, l := range sc.SLO.EndToEnd {
		mark(int32(sc.ServiceIndex(l.Name)))
	}
	for _, l := range sc.SLO.Services {
		mark(int32(sc.ServiceIndex(l.Name)))
	}
	for _, l := range sc.SLO.Queues {
		q := &sc.Queues[sc.QueueIndex(l.Name)]
		mark(int32(sc.ServiceIndex(q.Consumer)))
		for _, c := range q.Calls {
			mark(int32(sc.ServiceIndex(c.Service)))
		}
	}
	return need
}

// firstSchedule is step 2 of the reference: the M/M/c schedule.
func firstSchedule(sc *Scenario, seed uint64) *Oracle {
	steps := int(sc.Duration / OracleStep)
	stepSec := int(OracleStep / time.Second)
	nS, nQ := len(sc.Services), len(sc.Queues)
	order := topoOrder(sc)
	needed := neededServices(sc)
	load := sc.NewLoad(seed)

	// Peak rates per step (rates sampled each second of the step), and
	// the mean message rates for the queue smoothing.
	svcRate := make([][]float64, nS)
	qSum := make([][]float64, nQ)
	for i := range svcRate {
		svcRate[i] = make([]float64, steps)
	}
	for i := range qSum {
		qSum[i] = make([]float64, steps)
	}
	lam := make([]float64, nS)
	ext := make([]float64, nS)
	qlam := make([]float64, nQ)
	qext := make([]float64, nQ)
	for k := 0; k < steps; k++ {
		for sec := 0; sec < stepSec; sec++ {
			t := time.Duration(k*stepSec+sec)*time.Second + time.Second/2
			clear(ext)
			clear(qext)
			for i, l := range sc.Load {
				r := load.Rate(i, t)
				if l.Service != "" {
					ext[sc.ServiceIndex(l.Service)] += r
				} else {
					qext[sc.QueueIndex(l.Queue)] += r
				}
			}
			flows(sc, order, ext, qext, lam, qlam)
			for i := range lam {
				svcRate[i][k] = math.Max(svcRate[i][k], lam[i])
			}
			for i := range qlam {
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
		minR, maxR, managed := ServiceBounds(sc, i)
		need := make([]int32, steps)
		for k := 0; k < steps; k++ {
			if !managed || minR == maxR || !needed[i] {
				need[k] = minR
				continue
			}
			t := time.Duration(k) * OracleStep
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
				hold := q.ServiceTime.MeanSeconds() * phaseFactor(m.Phases, t)
				if m.Concurrency == ConcurrencySync {
					hold += callsTime(sc, q.Calls, t)
				}
				msgSlots += sum / float64(n) * hold / 0.9
			}
			hold := m.ServiceTime.MeanSeconds() * phaseFactor(m.Phases, t)
			if m.Concurrency == ConcurrencySync {
				hold += callsTime(sc, m.Calls, t)
			}
			r := syncReplicas(svcRate[i][k], hold, m.Slots, msgSlots)
			need[k] = min(max(r, minR), maxR)
		}
		o.Replicas[m.Name] = aheadOfStartup(m, need, nodeLead(sc))
	}
	return o
}

// nodeLead is how much earlier than its start-up a pod must be asked for
// when it may have to wait for a node: the node-addition delay of a
// cluster that adds nodes, nothing otherwise.
func nodeLead(sc *Scenario) time.Duration {
	if n := sc.Nodes; n != nil && n.MaxCount > n.Count {
		return n.AddDelay
	}
	return 0
}

// aheadOfStartup holds at each step the largest need within the service's
// start-up ahead (and lead more, for a node to be added), so that pods are
// ready when needed.
func aheadOfStartup(m *ServiceModel, need []int32, lead time.Duration) []int32 {
	ahead := int((m.Startup+m.StartupJitter+lead)/OracleStep) + 1
	sched := make([]int32, len(need))
	for k := range need {
		v := need[k]
		for j := k + 1; j <= k+ahead && j < len(need); j++ {
			v = max(v, need[j])
		}
		sched[k] = v
	}
	return sched
}

// flows propagates external arrival rates (ext into services, qext into
// queues) along calls, publishes and scripts' calls and publishes into
// lam and qlam. Scripts may publish scripts and call services that
// publish again, so it iterates to a fixed point (cut at 20 rounds, where
// a feedback gain at or above one would grow without bound).
func flows(sc *Scenario, order []int, ext, qext, lam, qlam []float64) {
	extra := make([]float64, len(lam))
	base := make([]float64, len(qlam))
	next := make([]float64, len(qlam))
	for round := 0; round < 20; round++ {
		for i := range lam {
			lam[i] = ext[i] + extra[i]
		}
		copy(base, qext)
		for _, i := range order {
			for _, c := range sc.Services[i].Calls {
				lam[sc.ServiceIndex(c.Service)] += lam[i] * c.Mean
			}
			for _, p := range sc.Services[i].Publishes {
				base[sc.QueueIndex(p.Queue)] += lam[i] * p.Mean
			}
		}
		copy(qlam, base)
		for r := 0; r < 20; r++ {
			copy(next, base)
			for qi := range sc.Queues {
				for _, p := range sc.Queues[qi].Publishes {
					next[sc.QueueIndex(p.Queue)] += qlam[qi] * p.Mean
				}
			}
			done := true
			for i := range next {
				if math.Abs(next[i]-qlam[i]) > 1e-9*(1+next[i]) {
					done = false
				}
			}
			copy(qlam, next)
			if done {
				break
			}
		}
		changed := false
		for i := range extra {
			var x float64
			for qi := range sc.Queues {
				for _, c := range sc.Queues[qi].Calls {
					if sc.ServiceIndex(c.Service) == i {
						x += qlam[qi] * c.Mean
					}
				}
			}
			if math.Abs(x-extra[i]) > 1e-9*(1+x) {
				changed = true
			}
			extra[i] = x
		}
		if !changed {
			return
		}
	}
}

// callsTime is the no-queueing time of a list of sequential calls at t:
// each callee's own work under its phase plus, when it holds its slot or
// simply answers after them, its own calls.
func callsTime(sc *Scenario, calls []Call, t time.Duration) float64 {
	var sum float64
	for _, c := range calls {
		m := &sc.Services[sc.ServiceIndex(c.Service)]
		sum += c.Mean * (m.ServiceTime.MeanSeconds()*phaseFactor(m.Phases, t) + callsTime(sc, m.Calls, t))
	}
	return sum
}

// repair is step 3 of the reference: replay and raise where the SLOs
// break and a needed service was congested.
func (o *Oracle) repair(sc *Scenario, seed uint64) {
	needed := neededServices(sc)
	best := o.clone()
	var bestViol, bestCost float64
	for round := 0; round <= OracleRepairs; round++ {
		r, err := Run(context.Background(), sc, Policy{Name: PolicyOracle, Oracle: o}, seed)
		if err != nil {
			return
		}
		if round == 0 || r.Scores.ViolationSeconds < bestViol ||
			(r.Scores.ViolationSeconds == bestViol && r.Scores.ElasticReplicaSeconds < bestCost) {
			best, bestViol, bestCost = o.clone(), r.Scores.ViolationSeconds, r.Scores.ElasticReplicaSeconds
			best.Rounds = round
		}
		if round == OracleRepairs || r.Scores.ViolationSeconds == 0 {
			break
		}
		if !o.raise(sc, r, needed) {
			break
		}
	}
	*o = *best
}

// raise adds replicas where the replay r violated and a needed service
// was congested; it reports whether anything changed.
func (o *Oracle) raise(sc *Scenario, r *Result, needed []bool) bool {
	w := r.Series.Step
	marks := make([][]bool, len(sc.Services))
	for k, bad := range r.Series.Violating {
		if !bad {
			continue
		}
		for i := range sc.Services {
			m := &sc.Services[i]
			minR, maxR, managed := ServiceBounds(sc, i)
			if !needed[i] || !managed || minR == maxR {
				continue
			}
			congested := false
			if ws := r.Series.Values["wait/"+m.Name]; k < len(ws) && ws[k] > 0.25 {
				congested = true
			}
			// A pod at its CPU limit is congested too, though no request
			// waits for a slot: the limit lengthens every work in progress.
			if ts := r.Series.Values["throttle/"+m.Name]; k < len(ts) && ts[k] > 0.25 {
				congested = true
			}
			// A consumer is congested when its messages waited for a
			// slot: more messages in progress or ready at the window's
			// end than its pods have slots, or a p95 wait for a slot
			// within the window above a quarter of a message's work.
			// Messages in progress alone are the pool working, not
			// waiting: counting every message beyond one pod's slots
			// raised a busy pool that kept up in every window another
			// service violated.
			pods := r.Series.Values["replicas/"+m.Name]
			for _, qn := range m.Consumes {
				if bl := r.Series.Values["backlog/"+qn]; k < len(bl) && k < len(pods) && bl[k] > pods[k]*float64(m.Slots) {
					congested = true
				}
				q := &sc.Queues[sc.QueueIndex(qn)]
				if qw := r.Series.Values["queueWait/"+qn]; k < len(qw) && qw[k] > 0.25*q.ServiceTime.MeanSeconds() {
					congested = true
				}
			}
			if !congested {
				continue
			}
			if marks[i] == nil {
				marks[i] = make([]bool, len(o.Replicas[m.Name]))
			}
			lead := m.Startup + m.StartupJitter + w
			from := max(0, int((time.Duration(k)*w-lead)/o.Step))
			to := min(len(marks[i]), int((time.Duration(k+1)*w+o.Step-1)/o.Step))
			for j := from; j < to; j++ {
				marks[i][j] = true
			}
		}
	}
	// Each marked step is raised once a round: the ranges of adjacent
	// violating windows overlap by the start-up lead, and raising per
	// window compounded the 25% over every window that covered a step
	// (three-fold in one round after a five-minute run of violations).
	changed := false
	for i, mk := range marks {
		if mk == nil {
			continue
		}
		_, maxR, _ := ServiceBounds(sc, i)
		sched := o.Replicas[sc.Services[i].Name]
		for j, on := range mk {
			if !on {
				continue
			}
			n := min(maxR, max(sched[j]+1, int32(math.Ceil(float64(sched[j])*1.25))))
			if n != sched[j] {
				sched[j] = n
				changed = true
			}
		}
	}
	return changed
}

func (o *Oracle) clone() *Oracle {
	c := &Oracle{Step: o.Step, Replicas: map[string][]int32{}, Rounds: o.Rounds}
	for k, v := range o.Replicas {
		c.Replicas[k] = append([]int32(nil), v...)
	}
	return c
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

// Late is the reference as a policy that reacts would have to follow it:
// each rise of a service's count comes as much later as a reaction takes
// (react, the time to see a change: the tick) plus the pods' start-up,
// which the reference spent ahead of the need (aheadOfStartup's lead);
// each fall comes at once. That is min(s[k], s[k-d]), d steps being that
// lead plus react, rounded down to whole steps (so a little early, if
// anything). Its sizing is the reference's, with no rate
// policy and no cost for the pods a late policy would keep too long, so
// it is no bound either way; it tells how many of a policy's relievable
// seconds the reference avoided by knowing the load ahead alone.
func (o *Oracle) Late(sc *Scenario, react time.Duration) *Oracle {
	late := &Oracle{Step: o.Step, Replicas: map[string][]int32{}, Rounds: o.Rounds}
	for i := range sc.Services {
		m := &sc.Services[i]
		s, ok := o.Replicas[m.Name]
		if !ok {
			continue
		}
		d := int((m.Startup+m.StartupJitter+nodeLead(sc))/o.Step) + 1 + int(react/o.Step)
		out := make([]int32, len(s))
		for k := range s {
			out[k] = min(s[k], s[max(k-d, 0)])
		}
		late.Replicas[m.Name] = out
	}
	return late
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
