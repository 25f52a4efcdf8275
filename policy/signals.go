package policy

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// HPA's defaults for telling a starting pod's CPU apart from real load.
const (
	defaultCPUInitializationPeriod = 5 * time.Minute
	defaultInitialReadinessDelay   = 30 * time.Second
	defaultQueueTargetUtilization  = 0.8
	// maxLatencyStep caps how far one latency breach multiplies replicas.
	maxLatencyStep = 2.0
	// A queue counts as saturated when its waiting messages would take at
	// least this long, and this share of the drain time, to clear.
	minSaturatedWait   = 5 * time.Second
	saturatedWaitShare = 0.1
)

// signalContext is what a signal is judged against besides its own
// observation.
type signalContext struct {
	current, ready int32
	tol            tolerances
	staleAfter     time.Duration
	snapTime, now  time.Time
	// staleCut, when hasStaleCut, is now less staleAfter, worked out once
	// for every signal of a Decide call.
	staleCut    time.Time
	hasStaleCut bool
	// capacity is the per-replica throughput a queue signal last measured
	// while saturated (0: never), from State.
	capacity float64
	// memo, when set, remembers the signal's last note so an unchanged one
	// is not formatted again.
	memo *noteMemo
	// drained is set by a queue signal that reads drained (queueDrained).
	drained bool
	// working and steady are set by a queue signal: working while more
	// messages wait than there are replicas, with steady the replicas the
	// arrivals alone need at the capacity it sized with (the proposal
	// otherwise).
	working bool
	steady  int32
	// unsettled: the pool's replicas changed within queueSettle, or not
	// all are ready, so completions over a rate window are divided among
	// replicas that did not all work through it (unsettledPool).
	unsettled bool
}

// evaluateSignal turns one observation into a replica proposal. A result
// whose Status is not StatusOK carries no proposal and must never lower the
// service's replicas. For a queue signal it also returns the per-replica
// capacity measured this time (0 when the pool was not saturated).
func evaluateSignal(sig SignalSpec, obs Observation, seen bool, c signalContext) (SignalResult, float64) {
	var r SignalResult
	measured := evalSignal(&r, &sig, &obs, seen, &c)
	return r, measured
}

// evalSignal is evaluateSignal writing into r, with nothing copied.
func evalSignal(r *SignalResult, sig *SignalSpec, obs *Observation, seen bool, c *signalContext) float64 {
	*r = SignalResult{Name: sig.Name, Kind: sig.Kind}
	c.drained, c.working, c.steady = false, false, 0
	current, ready, tol := c.current, c.ready, c.tol
	if sig.Tolerance > 0 {
		tol = tolerances{down: sig.Tolerance, up: sig.Tolerance}
	}
	switch {
	case !seen:
		r.Status = StatusMissing
		r.Note = "no observation"
		return 0
	case obs.Status != StatusOK && obs.Status != "":
		r.Status = obs.Status
		r.Note = obs.Error
		if r.Note == "" {
			r.Note = string(obs.Status)
		}
		return 0
	}
	sampleTime := obs.Time
	if sampleTime.IsZero() {
		sampleTime = c.snapTime
	}
	if c.staleAfter > 0 && !sampleTime.IsZero() && c.stale(sampleTime) {
		r.Status = StatusStale
		na := noteArgs{kind: noteStale, n: [3]int64{int64(c.now.Sub(sampleTime).Round(time.Second)), int64(c.staleAfter)}}
		r.Note = c.memo.note(&na)
		return 0
	}
	r.Status = StatusOK
	var err error
	var measured float64
	var na noteArgs
	switch sig.Kind {
	case KindUtilization:
		err = utilization(r, &na, sig.Utilization, obs.Pods, current, tol, c.now)
	case KindPods:
		err = podsMetric(r, &na, sig.Pods, obs.Pods, current, tol, c.now)
	case KindQueue:
		paceFresh := obs.Queue == nil || obs.Queue.UnackedTime.IsZero() || c.staleAfter <= 0 || !c.stale(obs.Queue.UnackedTime)
		measured, err = queue(r, &na, sig.Queue, obs.Queue, current, ready, tol, c.capacity, c.unsettled, paceFresh)
		c.drained = err == nil && queueDrained(obs.Queue, r, current)
		if err == nil {
			c.working, c.steady = queueSteady(obs.Queue, r, current)
		}
	case KindLatency:
		err = latency(r, &na, sig.Latency, obs.Value, current, tol)
	case KindPerReplica:
		err = perReplica(r, &na, sig.PerReplica, obs.Value, current, tol)
	case KindObject:
		err = object(r, &na, sig.Object, obs.Value, current, ready, tol)
	default:
		err = fmt.Errorf("unknown signal kind %q", sig.Kind)
	}
	if err != nil {
		r.Status = StatusInvalid
		r.Proposal = 0
		r.Note = err.Error()
		return 0
	}
	r.Note = c.memo.note(&na)
	r.Breach = r.Proposal > current
	return measured
}

// stale reports whether a sample taken at t is more than staleAfter older
// than now: t before now-staleAfter, which is the same comparison, when
// that cut is known.
func (c *signalContext) stale(t time.Time) bool {
	if c.hasStaleCut {
		return t.Before(c.staleCut)
	}
	return c.now.Sub(t) > c.staleAfter
}

// validNumber reports whether v can be used as a load value.
func validNumber(v float64) error {
	switch {
	case math.IsNaN(v):
		return fmt.Errorf("value is NaN")
	case math.IsInf(v, 0):
		return fmt.Errorf("value is infinite")
	case v < 0:
		return fmt.Errorf("value %g is negative", v)
	}
	return nil
}

// ceilReplicas rounds a replica requirement up, saturating at MaxInt32 so a
// huge load can never overflow into a small or negative count.
func ceilReplicas(x float64) int32 {
	c := math.Ceil(x)
	if c >= math.MaxInt32 {
		return math.MaxInt32
	}
	if c < 0 {
		return 0
	}
	return int32(c)
}

// utilization follows the HPA replica calculator for resource metrics
// (GetResourceReplicas): the usage of the ready pods' requests against the
// target percent, with missing and unready pods handled by podReplicas.
func utilization(r *SignalResult, na *noteArgs, spec *UtilizationSpec, pods []PodSample, current int32, tol tolerances, now time.Time) error {
	if spec == nil {
		return fmt.Errorf("utilization signal without spec")
	}
	r.Target = float64(spec.TargetPercent)
	m := podMetric{
		utilization: true, resource: spec.Resource, cpu: spec.Resource == ResourceCPU,
		targetPercent: int64(spec.TargetPercent), initPeriod: spec.CPUInitializationPeriod, readinessDelay: spec.InitialReadinessDelay,
	}
	if m.initPeriod == 0 {
		m.initPeriod = defaultCPUInitializationPeriod
	}
	if m.readinessDelay == 0 {
		m.readinessDelay = defaultInitialReadinessDelay
	}
	return m.replicas(r, na, pods, current, tol, now)
}

// podsMetric follows the HPA replica calculator for Pods metrics
// (calcPlainMetricReplicas): the ready pods' average value against the
// per-pod target. Readiness does not matter here, only the phase: HPA
// applies its starting-pod rule to CPU alone.
func podsMetric(r *SignalResult, na *noteArgs, spec *PodsSpec, pods []PodSample, current int32, tol tolerances, now time.Time) error {
	if spec == nil {
		return fmt.Errorf("pods signal without spec")
	}
	r.Target = spec.TargetPerPod
	m := podMetric{targetValue: spec.TargetPerPod}
	return m.replicas(r, na, pods, current, tol, now)
}

// podMetric is how a signal reads per-pod samples: as usage of the pods'
// requests (utilization) or as a plain value per pod (pods). It carries
// the HPA replica calculator both kinds share.
type podMetric struct {
	// utilization compares Usage*100/Request with targetPercent; otherwise
	// the average Value is compared with targetValue.
	utilization   bool
	resource      string // for messages
	targetPercent int64
	targetValue   float64
	// cpu applies HPA's rule for the CPU samples of starting pods.
	cpu                        bool
	initPeriod, readinessDelay time.Duration
	// initCut is initNow less initPeriod: a pod started after it is
	// still initializing. Worked out once for all the pods of a sample.
	initNow, initCut time.Time
}

// podState is where HPA's groupPods puts a pod.
type podState uint8

const (
	podReady   podState = iota // measured and counted
	podUnready                 // pending, or a CPU sample of a starting pod
	podMissing                 // no sample
	podIgnored                 // being deleted or failed
)

// group sorts one pod as HPA's groupPods does: failed and deleting pods are
// ignored; pending pods, and for CPU the samples of pods still starting,
// count as unready; running pods without a sample are missing.
func (m *podMetric) group(p *PodSample, now time.Time) podState {
	switch {
	case p.Deleting || p.Phase == PodFailed:
		return podIgnored
	case p.Phase == PodPending:
		return podUnready
	case !p.HasMetric:
		return podMissing
	case m.cpu && m.cpuUnready(p, now):
		return podUnready
	}
	return podReady
}

// Bounds on the amounts of utilization samples, in millicores or bytes:
// one pod's usage or request (2^48 bytes is 256 TiB) and the sum over a
// target's pods, low enough that every sum, usage×100 and request×1000
// (the assumed use of a pod without a sample) stay inside int64.
const (
	maxPodAmount = 1 << 48
	maxSumAmount = 1 << 56
)

// podSum totals a group of pods.
type podSum struct {
	n              int
	usage, request int64   // utilization: millicores or bytes
	value          float64 // pods: the metric's unit
}

func (s *podSum) add(o podSum) {
	s.n += o.n
	s.usage += o.usage
	s.request += o.request
	s.value += o.value
}

// idle is the group counted as using nothing.
func (s podSum) idle() podSum { return podSum{n: s.n, request: s.request} }

// ratio is the load of a group relative to the target, and the group's
// current value: a percent of requests, truncated as HPA does, or the
// average value.
func (m *podMetric) ratio(s podSum) (ratio, current float64) {
	if m.utilization {
		util := s.usage * 100 / s.request
		return float64(util) / float64(m.targetPercent), float64(util)
	}
	avg := s.value / float64(s.n)
	return avg / m.targetValue, avg
}

// replicas is the HPA replica calculator shared by utilization and pods
// signals. Pods without a sample are assumed, on a scale-down, to use their
// whole request (or the target, if higher) for utilization and exactly the
// target for pods; on a scale-up they, and unready pods, count as using
// nothing. Missing data is not zero load: those assumptions only ever damp
// a change, and a result whose direction they flip keeps the current count.
// Unlike HPA, a result against the load is refused even when every pod is
// measured: with fewer pods than replicas (pods not created yet, or the
// surge of a rollout) ceil(ratio × pods) can answer load above target with
// fewer replicas than run now, or load below it with more.
func (m *podMetric) replicas(r *SignalResult, na *noteArgs, pods []PodSample, current int32, tol tolerances, now time.Time) error {
	fallbackPercent := max(100, m.targetPercent)
	var ready, unready, missing podSum
	var total int64
	for i := range pods {
		p := &pods[i]
		st := m.group(p, now)
		if st == podIgnored {
			continue
		}
		if m.utilization {
			if p.Usage < 0 || p.Request < 0 {
				return fmt.Errorf("pod %s: negative usage or request", p.Name)
			}
			if p.Usage > maxPodAmount || p.Request > maxPodAmount {
				return fmt.Errorf("pod %s: usage %d or request %d of %s beyond any real pod's", p.Name, p.Usage, p.Request, m.resource)
			}
			// Keep the sums (and usage×100) inside int64, whatever the
			// number of pods: a wrapped sum reads as little or no load.
			if total += p.Usage + p.Request; total > maxSumAmount {
				return fmt.Errorf("the pods' %s usage and requests add up beyond any real workload's", m.resource)
			}
			if p.Request == 0 {
				return fmt.Errorf("missing request for %s on pod %s", m.resource, p.Name)
			}
		} else if st == podReady {
			if err := validNumber(p.Value); err != nil {
				return fmt.Errorf("pod %s: %w", p.Name, err)
			}
		}
		switch st {
		case podReady:
			ready.add(podSum{n: 1, usage: p.Usage, request: p.Request, value: p.Value})
		case podUnready:
			unready.add(podSum{n: 1, request: p.Request})
		case podMissing:
			// What the pod is assumed to use on a scale-down, per pod as
			// HPA truncates it.
			missing.add(podSum{n: 1, usage: p.Request * fallbackPercent / 100, request: p.Request, value: m.targetValue})
		}
	}
	if ready.n == 0 {
		if m.utilization {
			return fmt.Errorf("no ready pod has a %s sample", m.resource)
		}
		return fmt.Errorf("no ready pod has a sample")
	}
	ratio, value := m.ratio(ready)
	r.Value = value

	scaleUpWithUnready := unready.n > 0 && ratio > 1.0
	if !scaleUpWithUnready && missing.n == 0 {
		if tol.within(ratio) {
			r.Proposal = current
			*na = m.describe(value, ready.n, true)
			return nil
		}
		r.Proposal = ceilReplicas(ratio * float64(ready.n))
		*na = m.describe(value, ready.n, false)
		if (ratio > 1 && r.Proposal < current) || (ratio < 1 && r.Proposal > current) {
			r.Proposal = current
		}
		return nil
	}

	// Rebalance with assumptions about the pods that could not be measured.
	all := ready
	switch {
	case missing.n > 0 && ratio < 1.0:
		all.add(missing)
	case missing.n > 0 && ratio > 1.0:
		all.add(missing.idle())
	}
	if scaleUpWithUnready {
		all.add(unready.idle())
	}
	newRatio, newValue := m.ratio(all)
	*na = m.describeRebalanced(value, newValue, missing.n, unready.n)
	if tol.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		r.Proposal = current
		return nil
	}
	proposal := ceilReplicas(newRatio * float64(all.n))
	if (newRatio < 1.0 && proposal > current) || (newRatio > 1.0 && proposal < current) {
		proposal = current
	}
	r.Proposal = proposal
	return nil
}

func (m *podMetric) describe(value float64, ready int, within bool) noteArgs {
	var a noteArgs
	switch {
	case m.utilization && within:
		a = noteArgs{kind: noteUtilWithin, s: m.resource, n: [3]int64{m.targetPercent}}
		a.setF(value)
	case m.utilization:
		a = noteArgs{kind: noteUtil, s: m.resource, n: [3]int64{m.targetPercent, int64(ready)}}
		a.setF(value)
	case within:
		a = noteArgs{kind: notePodsWithin}
		a.setF(value, m.targetValue)
	default:
		a = noteArgs{kind: notePods, n: [3]int64{0, int64(ready)}}
		a.setF(value, m.targetValue)
	}
	return a
}

func (m *podMetric) describeRebalanced(value, newValue float64, missing, unready int) noteArgs {
	a := noteArgs{kind: notePodsRebalanced, n: [3]int64{0, int64(missing), int64(unready)}}
	if m.utilization {
		a.kind, a.s, a.n[0] = noteUtilRebalanced, m.resource, m.targetPercent
	}
	a.setF(value, newValue, m.targetValue)
	return a
}

// cpuUnready applies HPA's rule for CPU samples of young pods: within the
// initialisation period a pod is unready if it is not ready or its sample
// predates readiness; afterwards only if it went unready so soon after
// starting that it never really became ready.
func (m *podMetric) cpuUnready(p *PodSample, now time.Time) bool {
	if !p.ReadyKnown || p.StartTime.IsZero() {
		return true
	}
	if m.initNow != now || m.initCut.IsZero() {
		m.initNow, m.initCut = now, now.Add(-m.initPeriod)
	}
	// StartTime + initPeriod after now, without an addition per pod.
	if p.StartTime.After(m.initCut) {
		return !p.Ready || p.MetricTime.Before(p.ReadyTransition.Add(p.MetricWindow))
	}
	return !p.Ready && p.StartTime.Add(m.readinessDelay).After(p.ReadyTransition)
}

// queue sizes a consumer pool so that it keeps up with arrivals and drains
// the backlog within DrainTime, planning for TargetUtilization of the
// per-replica throughput (a pool of known concurrency shares that headroom
// among its slots: pooledHeadroom). Throughput is measured: a source-provided capacity
// wins; otherwise completions per ready replica, which is the true capacity
// while messages wait and only a lower bound otherwise. The capacity last
// measured while saturated (learned, from State) then stands in for the
// configured estimate, so a pool is not shrunk on a guess it has disproved.
// It returns the capacity measured this time, 0 when not saturated.
//
// While the pool is unsettled (replicas added or removed within
// queueSettle, or some not ready), completions over the rate window are
// shared by replicas that did not all work through it: right after a
// scale-up the new pods count fully and the reading is low, and a low
// reading taken as the capacity would keep the pool oversized for as long
// as it is remembered. Such a reading only ever raises what is known: it
// sizes the pool and is learned only when above the learned capacity.
// Completions per settled replica are never more than the capacity,
// saturated or not, so one above the learned capacity replaces it: a
// reading latched in a quiet hour does not outlive the evidence against
// it.
//
// The result's value is the throughput the pool needs (arrivals plus the
// messages waiting spread over DrainTime: those in progress are already
// being worked off, at a pace the arrivals account for) and its target the throughput the current
// replicas give at TargetUtilization, both in messages per second, so their
// ratio is the factor by which the pool is short. A target in messages the
// replicas could drain instead was 0 exactly when arrivals alone overran
// them, which hid the worst case from anything dividing by it.
//
// A pace learned while the pods were slow (a dependency slowed their
// messages) would otherwise outlive the slowness: the pool is sized on it,
// so no pod completes more and no reading raises it. With the replicas'
// concurrency configured and the messages in progress read, the pace a
// full replica reaches is told without filling it (busyPace); it raises
// the per-replica throughput used, never lowers it, and only while the pool
// is not saturated, where the completions per replica say nothing of the
// capacity. A saturated pool is sized as before, on what it completes.
// Unlike completions per replica, the time a message takes is the pool's
// whole in-progress count over its whole completion rate, which does not
// depend on how many replicas shared the window: a pool just resized
// reads it as well as a settled one (just after a scale-up the window's
// completions lag the new pods' messages, which reads slower, not
// faster). It is not learned: it holds only while it is read, and a pool
// whose in-progress count goes missing or stale is sized on what was
// learned. paceFresh is false when the in-progress reading is stale.
func queue(r *SignalResult, na *noteArgs, spec *QueueSpec, q *QueueObservation, current, ready int32, tol tolerances, learned float64, unsettled, paceFresh bool) (float64, error) {
	if spec == nil {
		return 0, fmt.Errorf("queue signal without spec")
	}
	if q == nil {
		return 0, fmt.Errorf("queue observation without queue data")
	}
	for _, v := range []float64{q.Backlog, q.Unacked, q.ArrivalRate, q.CompletionRate, q.ThroughputPerReplica} {
		if err := validNumber(v); err != nil {
			return 0, err
		}
	}
	u := spec.TargetUtilization
	if u <= 0 || u > 1 {
		u = defaultQueueTargetUtilization
	}
	drain := spec.DrainTime.Seconds()
	if drain <= 0 {
		return 0, fmt.Errorf("drain time must be positive")
	}
	perReplica := q.ThroughputPerReplica
	source := "measured"
	waiting := q.Waiting()
	var saturatedCapacity float64
	if perReplica == 0 {
		workers := ready
		if workers <= 0 {
			workers = current
		}
		var measured float64
		if workers > 0 {
			measured = q.CompletionRate / float64(workers)
		}
		// Completions per replica are the pool's capacity only while every
		// replica is busy, that is while messages wait beyond those already
		// delivered (in progress or prefetched). Counting delivered ones as
		// waiting made a pool that keeps up look saturated and climb.
		// A short burst also leaves a few messages waiting; only a queue
		// whose waiting work would take a while to clear at the current pace
		// proves the pool is the limit (a quiet-hour burst read as
		// saturation would teach a capacity far below the real one).
		saturated := waiting > float64(workers) && measured > 0 &&
			waiting/q.CompletionRate >= math.Max(minSaturatedWait.Seconds(), saturatedWaitShare*drain)
		estimate, estimateSource := spec.ThroughputPerReplica, "configured"
		if learned > 0 {
			estimate, estimateSource = learned, "learned"
		}
		switch {
		case saturated && unsettled && learned > measured:
			perReplica, source = learned, "learned"
		case saturated:
			perReplica, saturatedCapacity = measured, measured
		case estimate > measured:
			perReplica, source = estimate, estimateSource
		default:
			perReplica = measured
			if learned > 0 && measured > learned && !unsettled {
				// Settled replicas completing more each than the pool
				// was once measured to manage: the capacity is at least
				// this, and an old low reading is forgotten.
				saturatedCapacity = measured
			}
		}
		if !saturated && paceFresh {
			if p := busyPace(spec.ConcurrencyPerReplica, q); p > perReplica {
				perReplica, source = p, "in-progress"
			}
		}
	}
	// Messages in progress are not drained again: in a pool that keeps up
	// they are the arrivals of the last moments, which the arrival rate
	// already asks capacity for; counting them too asked a pool of slow
	// scripts for a share more replicas than its arrivals need.
	need := q.ArrivalRate + waiting/drain
	r.Value = need
	if perReplica <= 0 {
		// Nothing completes and nothing is known about capacity.
		if need == 0 {
			r.Proposal = 0
			*na = textNote("queue idle")
			return saturatedCapacity, nil
		}
		if current == 0 {
			r.Proposal = 1
			*na = noteArgs{kind: noteQueueStart}
			na.setF(q.Backlog)
			return saturatedCapacity, nil
		}
		return 0, fmt.Errorf("backlog %s but per-replica throughput unknown (no completions)", fixedNum(q.Backlog, 0))
	}
	capacity := perReplica * u
	pool := pooledHeadroom{k: spec.ConcurrencyPerReplica, u: u}
	r.Target = max(capacity*float64(current), pool.carries(current)*perReplica)
	required := min(need/capacity, pool.needs(need/perReplica))
	*na = noteArgs{kind: noteQueue, s: source, n: [3]int64{int64(spec.DrainTime)}}
	na.setF(q.Backlog, q.ArrivalRate, perReplica, required)
	if current > 0 && tol.within(required/float64(current)) {
		r.Proposal = current
		return saturatedCapacity, nil
	}
	r.Proposal = ceilReplicas(required)
	if r.Proposal < current && waiting > float64(current) && q.CompletionRate <= q.ArrivalRate {
		// Messages wait and the pool is not working them off faster than
		// they come (or cannot say it is): the backlog holds or grows,
		// whatever the arrivals alone would need, so no replica goes.
		r.Proposal = current
		na.n[1] = 1
	}
	return saturatedCapacity, nil
}

// pooledHeadroom sizes a pool of replicas with concurrency slots each by
// square-root staffing: c slots carry a busy ones when c = a + β√a. The
// spare slots a pool needs for arrivals' randomness grow as the square
// root of its load, not in proportion to it, so a fixed utilization target
// leaves a large pool idle for nothing: with four slots a replica at 80%,
// 50 replicas' worth of load would keep ten replicas spare where a
// queueing pool needs about two. β is set so that one replica at the
// target utilization u is one replica, the user's headroom for the
// smallest pool, and the rule never asks for more than the fixed target
// (a load below one replica's worth is sized at u). Without the
// concurrency (k = 0) there are no slots to pool: the fixed target holds.
type pooledHeadroom struct {
	k, u float64
}

func (p pooledHeadroom) beta() float64 {
	return p.k * (1 - p.u) / math.Sqrt(p.k*p.u)
}

func (p pooledHeadroom) usable() bool {
	return p.k > 0 && !math.IsInf(p.k, 0) && p.u > 0 && p.u < 1
}

// needs is the replicas that carry load replicas' worth of busy slots
// (load in units of one full replica), +Inf without the concurrency.
func (p pooledHeadroom) needs(load float64) float64 {
	if !p.usable() || !(load > 0) {
		return math.Inf(1)
	}
	a := load * p.k
	return (a + p.beta()*math.Sqrt(a)) / p.k
}

// carries is the load, in full replicas' worth, that n replicas carry: the
// inverse of needs; 0 without the concurrency.
func (p pooledHeadroom) carries(n int32) float64 {
	if !p.usable() || n <= 0 {
		return 0
	}
	b, c := p.beta(), float64(n)*p.k
	x := (math.Sqrt(b*b+4*c) - b) / 2
	return x * x / p.k
}

// queueSteady reports whether a queue signal's pool is working off a
// backlog (more messages wait, beyond those delivered, than there are
// replicas, and the signal sized with a known capacity), and then the
// replicas the arrivals alone need at that capacity; otherwise the
// signal's proposal. r is the signal's result, whose Target is what the
// current replicas give at the target utilization.
func queueSteady(q *QueueObservation, r *SignalResult, current int32) (bool, int32) {
	if q == nil || current <= 0 || !(r.Target > 0) {
		return false, r.Proposal
	}
	if q.Waiting() <= float64(current) {
		return false, r.Proposal
	}
	perReplica := r.Target / float64(current)
	return true, min(r.Proposal, ceilReplicas(q.ArrivalRate/perReplica))
}

// busyPace is the messages per second one replica completes when all its
// concurrency slots are busy, told by Little's law from a pool that need
// not be full: each message takes unacked / completion-rate seconds (the
// messages in progress over the rate they leave), so a replica with
// concurrency slots completes concurrency / that many a second. It is 0
// when it cannot be told: no concurrency configured, less than one
// message in progress (a source that cannot count them reads 0; a
// fraction of one, an average over mostly empty samples, is too few
// messages to time), nothing completing.
//
// It assumes a message takes as long in a full replica as in a part-busy
// one (no contention for the pod's CPU or a dependency as it fills) and
// that unacked counts messages being worked on. Messages a consumer has
// prefetched but not begun also count as unacknowledged; they make the
// time per message look longer and the pace lower, never higher, so a
// prefetch above the concurrency errs towards more replicas. A pod whose
// time per message does grow as it fills is caught out when its pool
// saturates: messages wait, and the completions per replica are taken
// for the capacity instead.
func busyPace(concurrency float64, q *QueueObservation) float64 {
	if !(concurrency > 0) || math.IsInf(concurrency, 0) || !(q.Unacked >= 1) || !(q.CompletionRate > 0) {
		return 0
	}
	p := concurrency * q.CompletionRate / q.Unacked
	if math.IsInf(p, 0) || math.IsNaN(p) {
		return 0
	}
	return p
}

// queueDrained reports whether a queue signal's reading is evidence that
// the pool has more replicas than it needs: at most one message waits per
// replica (beyond those delivered), and the throughput the pool needs
// (arrivals plus the backlog over the drain time) is below what the
// current replicas give at the target utilization, so the signal asks for
// fewer. A backlog that is building fails the first test; arrivals that
// have caught up with the pool fail the second.
func queueDrained(q *QueueObservation, r *SignalResult, current int32) bool {
	if q == nil || current <= 0 || r.Target <= 0 {
		return false
	}
	waiting := q.Waiting()
	return waiting <= float64(current) && r.Value < r.Target && r.Proposal < current
}

// latency compares a latency quantile with its SLO. Above the SLO it asks
// for replicas in proportion to the overshoot, at most twice as many; well
// below it, it lets go of one replica at a time, because latency falls off a
// cliff, not a slope, when a service runs short of capacity.
func latency(r *SignalResult, na *noteArgs, spec *LatencySpec, seconds float64, current int32, tol tolerances) error {
	if spec == nil {
		return fmt.Errorf("latency signal without spec")
	}
	if err := validNumber(seconds); err != nil {
		return err
	}
	slo := spec.SLO.Seconds()
	r.Value, r.Target = seconds, slo
	ratio := seconds / slo
	*na = noteArgs{kind: noteLatency, n: [3]int64{int64(spec.SLO)}}
	na.setF(spec.Quantile, seconds)
	switch {
	case tol.within(ratio):
		r.Proposal = current
	case ratio > 1:
		// Latency grows without bound as capacity runs out, so its ratio
		// overstates the replicas needed: at most double per decision.
		r.Proposal = max(ceilReplicas(float64(current)*min(ratio, maxLatencyStep)), current+1)
	default:
		r.Proposal = max(ceilReplicas(float64(current)*ratio), current-1, 0)
	}
	return nil
}

// perReplica is KEDA's AverageValue: the total spread over replicas.
func perReplica(r *SignalResult, na *noteArgs, spec *PerReplicaSpec, total float64, current int32, tol tolerances) error {
	if spec == nil {
		return fmt.Errorf("perReplica signal without spec")
	}
	if err := validNumber(total); err != nil {
		return err
	}
	r.Target = spec.TargetPerReplica
	if current > 0 {
		r.Value = total / float64(current)
		if tol.within(r.Value / spec.TargetPerReplica) {
			r.Proposal = current
			*na = noteArgs{kind: notePerReplicaIn}
			na.setF(r.Value, spec.TargetPerReplica)
			return nil
		}
	} else {
		r.Value = total
	}
	r.Proposal = ceilReplicas(total / spec.TargetPerReplica)
	*na = noteArgs{kind: notePerReplica}
	na.setF(total, spec.TargetPerReplica)
	return nil
}

// object is HPA's Object and External metrics with a Value target
// (GetObjectMetricReplicas, GetExternalMetricReplicas): the ratio of value
// to target scales the ready pods; from zero replicas, where no pod is
// ready, the ratio alone gives the count, with no tolerance, so a service
// scaled to zero can start again.
func object(r *SignalResult, na *noteArgs, spec *ObjectSpec, value float64, current, ready int32, tol tolerances) error {
	if spec == nil {
		return fmt.Errorf("object signal without spec")
	}
	if err := validNumber(value); err != nil {
		return err
	}
	r.Value, r.Target = value, spec.Target
	ratio := value / spec.Target
	*na = noteArgs{kind: noteObject}
	na.setF(value, spec.Target)
	if current == 0 {
		r.Proposal = ceilReplicas(ratio)
		return nil
	}
	if tol.within(ratio) {
		r.Proposal = current
		return nil
	}
	base := ready
	if base <= 0 {
		// No ready pod would make HPA propose zero; missing data is not
		// zero load, so scale the current count instead.
		base = current
	}
	r.Proposal = ceilReplicas(ratio * float64(base))
	if spec.RefuseAgainstLoad && ((ratio > 1 && r.Proposal < current) || (ratio < 1 && r.Proposal > current)) {
		r.Proposal = current
	}
	return nil
}

// fmtSeconds writes a latency as a duration; one too long for a
// time.Duration (about 292 years) would overflow it into nonsense, so it is
// written in seconds with four significant digits instead.
func fmtSeconds(s float64) string {
	if !(math.Abs(s) < math.MaxInt64/float64(time.Second)) {
		return strconv.FormatFloat(s, 'g', 4, 64) + "s"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
