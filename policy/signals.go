package policy

import (
	"fmt"
	"math"
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
	tolerance      float64
	staleAfter     time.Duration
	snapTime, now  time.Time
	// capacity is the per-replica throughput a queue signal last measured
	// while saturated (0: never), from State.
	capacity float64
}

// evaluateSignal turns one observation into a replica proposal. A result
// whose Status is not StatusOK carries no proposal and must never lower the
// service's replicas. For a queue signal it also returns the per-replica
// capacity measured this time (0 when the pool was not saturated).
func evaluateSignal(sig SignalSpec, obs Observation, seen bool, c signalContext) (SignalResult, float64) {
	r := SignalResult{Name: sig.Name, Kind: sig.Kind}
	current, ready, tolerance := c.current, c.ready, c.tolerance
	if sig.Tolerance > 0 {
		tolerance = sig.Tolerance
	}
	switch {
	case !seen:
		r.Status = StatusMissing
		r.Note = "no observation"
		return r, 0
	case obs.Status != StatusOK && obs.Status != "":
		r.Status = obs.Status
		r.Note = obs.Error
		if r.Note == "" {
			r.Note = string(obs.Status)
		}
		return r, 0
	}
	sampleTime := obs.Time
	if sampleTime.IsZero() {
		sampleTime = c.snapTime
	}
	if c.staleAfter > 0 && !sampleTime.IsZero() && c.now.Sub(sampleTime) > c.staleAfter {
		r.Status = StatusStale
		r.Note = fmt.Sprintf("sample is %s old (stale after %s)", c.now.Sub(sampleTime).Round(time.Second), c.staleAfter)
		return r, 0
	}
	r.Status = StatusOK
	var err error
	var measured float64
	switch sig.Kind {
	case KindUtilization:
		err = utilization(&r, sig.Utilization, obs.Pods, current, tolerance, c.now)
	case KindQueue:
		measured, err = queue(&r, sig.Queue, obs.Queue, current, ready, tolerance, c.capacity)
	case KindLatency:
		err = latency(&r, sig.Latency, obs.Value, current, tolerance)
	case KindPerReplica:
		err = perReplica(&r, sig.PerReplica, obs.Value, current, tolerance)
	case KindObject:
		err = object(&r, sig.Object, obs.Value, current, ready, tolerance)
	default:
		err = fmt.Errorf("unknown signal kind %q", sig.Kind)
	}
	if err != nil {
		r.Status = StatusInvalid
		r.Proposal = 0
		r.Note = err.Error()
		return r, 0
	}
	r.Breach = r.Proposal > current
	return r, measured
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

// utilization follows the HPA replica calculator for resource metrics:
// failed and deleting pods are ignored; pending pods, and CPU samples of pods
// still initialising, count as unready; pods without a sample are missing.
// On a scale-down, missing pods are assumed to use 100% of their request (or
// the target if higher); on a scale-up they and unready pods count as 0%,
// and a result that flips the scaling direction is refused.
func utilization(r *SignalResult, spec *UtilizationSpec, pods []PodSample, current int32, tolerance float64, now time.Time) error {
	if spec == nil {
		return fmt.Errorf("utilization signal without spec")
	}
	r.Target = float64(spec.TargetPercent)
	initPeriod := spec.CPUInitializationPeriod
	if initPeriod == 0 {
		initPeriod = defaultCPUInitializationPeriod
	}
	readinessDelay := spec.InitialReadinessDelay
	if readinessDelay == 0 {
		readinessDelay = defaultInitialReadinessDelay
	}

	var usageSum, requestSum int64
	var readyCount, unready, missing int
	var unreadyRequest, missingRequest int64
	for i := range pods {
		p := &pods[i]
		if p.Deleting || p.Phase == PodFailed {
			continue
		}
		if p.Usage < 0 || p.Request < 0 {
			return fmt.Errorf("pod %s: negative usage or request", p.Name)
		}
		if p.Phase == PodPending {
			unready++
			unreadyRequest += p.Request
			if p.Request == 0 {
				return fmt.Errorf("missing request for %s on pod %s", spec.Resource, p.Name)
			}
			continue
		}
		if !p.HasMetric {
			missing++
			missingRequest += p.Request
			if p.Request == 0 {
				return fmt.Errorf("missing request for %s on pod %s", spec.Resource, p.Name)
			}
			continue
		}
		if spec.Resource == ResourceCPU && cpuUnready(p, initPeriod, readinessDelay, now) {
			unready++
			unreadyRequest += p.Request
			if p.Request == 0 {
				return fmt.Errorf("missing request for %s on pod %s", spec.Resource, p.Name)
			}
			continue
		}
		if p.Request == 0 {
			return fmt.Errorf("missing request for %s on pod %s", spec.Resource, p.Name)
		}
		usageSum += p.Usage
		requestSum += p.Request
		readyCount++
	}
	if readyCount == 0 {
		return fmt.Errorf("no ready pod has a %s sample", spec.Resource)
	}
	util := usageSum * 100 / requestSum
	r.Value = float64(util)
	ratio := float64(util) / float64(spec.TargetPercent)

	scaleUpWithUnready := unready > 0 && ratio > 1.0
	if !scaleUpWithUnready && missing == 0 {
		if math.Abs(1.0-ratio) <= tolerance {
			r.Proposal = current
			r.Note = fmt.Sprintf("%d%% of %s request, target %d%%, within tolerance", util, spec.Resource, spec.TargetPercent)
			return nil
		}
		r.Proposal = ceilReplicas(ratio * float64(readyCount))
		r.Note = fmt.Sprintf("%d%% of %s request over %d ready pods, target %d%%", util, spec.Resource, readyCount, spec.TargetPercent)
		// With fewer measured pods than replicas (pods not created yet),
		// HPA's arithmetic can answer load above target with fewer
		// replicas than run now; refuse a result against the load.
		if (ratio > 1 && r.Proposal < current) || (ratio < 1 && r.Proposal > current) {
			r.Proposal = current
		}
		return nil
	}

	// Rebalance with assumptions about the pods we could not measure.
	newUsage, newRequest, count := usageSum, requestSum, readyCount
	if missing > 0 {
		switch {
		case ratio < 1.0:
			fallback := int64(max(100, spec.TargetPercent))
			newUsage += missingRequest * fallback / 100
			newRequest += missingRequest
			count += missing
		case ratio > 1.0:
			newRequest += missingRequest
			count += missing
		}
	}
	if scaleUpWithUnready {
		newRequest += unreadyRequest
		count += unready
	}
	newUtil := newUsage * 100 / newRequest
	newRatio := float64(newUtil) / float64(spec.TargetPercent)
	r.Note = fmt.Sprintf("%d%% of %s request (%d%% counting %d missing and %d unready pods), target %d%%",
		util, spec.Resource, newUtil, missing, unready, spec.TargetPercent)
	if math.Abs(1.0-newRatio) <= tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		r.Proposal = current
		return nil
	}
	proposal := ceilReplicas(newRatio * float64(count))
	if (newRatio < 1.0 && proposal > current) || (newRatio > 1.0 && proposal < current) {
		proposal = current
	}
	r.Proposal = proposal
	return nil
}

// cpuUnready applies HPA's rule for CPU samples of young pods: within the
// initialisation period a pod is unready if it is not ready or its sample
// predates readiness; afterwards only if it went unready so soon after
// starting that it never really became ready.
func cpuUnready(p *PodSample, initPeriod, readinessDelay time.Duration, now time.Time) bool {
	if !p.ReadyKnown || p.StartTime.IsZero() {
		return true
	}
	if p.StartTime.Add(initPeriod).After(now) {
		return !p.Ready || p.MetricTime.Before(p.ReadyTransition.Add(p.MetricWindow))
	}
	return !p.Ready && p.StartTime.Add(readinessDelay).After(p.ReadyTransition)
}

// queue sizes a consumer pool so that it keeps up with arrivals and drains
// the backlog within DrainTime, planning for TargetUtilization of the
// per-replica throughput. Throughput is measured: a source-provided capacity
// wins; otherwise completions per ready replica, which is the true capacity
// while messages wait and only a lower bound otherwise. The capacity last
// measured while saturated (learned, from State) then stands in for the
// configured estimate, so a pool is not shrunk on a guess it has disproved.
// It returns the capacity measured this time, 0 when not saturated.
func queue(r *SignalResult, spec *QueueSpec, q *QueueObservation, current, ready int32, tolerance, learned float64) (float64, error) {
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
	r.Value = q.Backlog

	perReplica := q.ThroughputPerReplica
	source := "measured"
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
		waiting := math.Max(0, q.Backlog-q.Unacked)
		saturated := waiting > float64(workers) && measured > 0 &&
			waiting/q.CompletionRate >= math.Max(minSaturatedWait.Seconds(), saturatedWaitShare*drain)
		estimate, estimateSource := spec.ThroughputPerReplica, "configured"
		if learned > 0 {
			estimate, estimateSource = learned, "learned"
		}
		switch {
		case saturated:
			perReplica, saturatedCapacity = measured, measured
		case estimate > measured:
			perReplica, source = estimate, estimateSource
		default:
			perReplica = measured
		}
	}
	need := q.ArrivalRate + q.Backlog/drain
	if perReplica <= 0 {
		// Nothing completes and nothing is known about capacity.
		if need == 0 {
			r.Proposal = 0
			r.Note = "queue idle"
			return saturatedCapacity, nil
		}
		if current == 0 {
			r.Proposal = 1
			r.Note = fmt.Sprintf("backlog %.0f with no consumers: start one", q.Backlog)
			return saturatedCapacity, nil
		}
		return 0, fmt.Errorf("backlog %.0f but per-replica throughput unknown (no completions)", q.Backlog)
	}
	capacity := perReplica * u
	r.Target = math.Max(0, capacity*float64(current)-q.ArrivalRate) * drain
	required := need / capacity
	r.Note = fmt.Sprintf("backlog %.0f, arrivals %.2f/s, %s throughput %.2f/s per replica: %.2f replicas drain it in %s",
		q.Backlog, q.ArrivalRate, source, perReplica, required, spec.DrainTime)
	if current > 0 && math.Abs(1.0-required/float64(current)) <= tolerance {
		r.Proposal = current
		return saturatedCapacity, nil
	}
	r.Proposal = ceilReplicas(required)
	return saturatedCapacity, nil
}

// latency compares a latency quantile with its SLO. Above the SLO it asks
// for replicas in proportion to the overshoot, at most twice as many; well
// below it, it lets go of one replica at a time, because latency falls off a
// cliff, not a slope, when a service runs short of capacity.
func latency(r *SignalResult, spec *LatencySpec, seconds float64, current int32, tolerance float64) error {
	if spec == nil {
		return fmt.Errorf("latency signal without spec")
	}
	if err := validNumber(seconds); err != nil {
		return err
	}
	slo := spec.SLO.Seconds()
	r.Value, r.Target = seconds, slo
	ratio := seconds / slo
	r.Note = fmt.Sprintf("p%g latency %s vs SLO %s", spec.Quantile*100, fmtSeconds(seconds), spec.SLO)
	switch {
	case math.Abs(1.0-ratio) <= tolerance:
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
func perReplica(r *SignalResult, spec *PerReplicaSpec, total float64, current int32, tolerance float64) error {
	if spec == nil {
		return fmt.Errorf("perReplica signal without spec")
	}
	if err := validNumber(total); err != nil {
		return err
	}
	r.Target = spec.TargetPerReplica
	if current > 0 {
		r.Value = total / float64(current)
		if math.Abs(1.0-r.Value/spec.TargetPerReplica) <= tolerance {
			r.Proposal = current
			r.Note = fmt.Sprintf("%.4g per replica, target %.4g (within tolerance)", r.Value, spec.TargetPerReplica)
			return nil
		}
	} else {
		r.Value = total
	}
	r.Proposal = ceilReplicas(total / spec.TargetPerReplica)
	r.Note = fmt.Sprintf("total %.4g at %.4g per replica", total, spec.TargetPerReplica)
	return nil
}

// object is HPA's Object metric with a Value target: the ratio of value to
// target scales the ready replicas, but never against the load's direction.
func object(r *SignalResult, spec *ObjectSpec, value float64, current, ready int32, tolerance float64) error {
	if spec == nil {
		return fmt.Errorf("object signal without spec")
	}
	if err := validNumber(value); err != nil {
		return err
	}
	r.Value, r.Target = value, spec.Target
	ratio := value / spec.Target
	r.Note = fmt.Sprintf("value %.4g vs target %.4g", value, spec.Target)
	if math.Abs(1.0-ratio) <= tolerance {
		r.Proposal = current
		return nil
	}
	base := ready
	if base <= 0 {
		base = current
	}
	r.Proposal = ceilReplicas(ratio * float64(base))
	// Few ready pods can make a load above target propose fewer replicas
	// than run now; refuse a result that points against the load.
	if (ratio > 1 && r.Proposal < current) || (ratio < 1 && r.Proposal > current) {
		r.Proposal = current
	}
	return nil
}

func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
