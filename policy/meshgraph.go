package policy

import (
	"fmt"
	"math"
	"time"
)

// KindMesh is the kind of the result the mesh adds to a service's signals
// when it has something to say of it: the replicas its measured throughput
// needs, or why none are added. It is never configured.
const KindMesh SignalKind = "mesh"

// meshSignal names that result.
const meshSignal = "mesh"

// meshWarmup is how many judged ticks a service's baselines need before
// its latency is judged against them.
const meshWarmup = 3

// meshSkew is how far ahead of the tick a mesh observation may be stamped
// (the source's clock against the loop's) before it counts as invalid.
const meshSkew = 30 * time.Second

// A queue builds when arrivals outrun completions by more than meshOutrun
// of them and by at least meshQueued requests over the window: less is
// the noise of a window's edges.
const (
	meshOutrun = 0.05
	meshQueued = 10
)

// meshDraining is how many answers per request mark a window in which a
// backlog drains, too unsteady to decompose.
const meshDraining = 1.25

// meshDecompNoise is the share of a request's time in calls below which a
// change of its own latency is not told from the decomposition's noise.
const meshDecompNoise = 0.1

// Learning rates of the baselines: a fall is followed quickly, a rise
// slowly, so a baseline stays near the lower envelope of what was seen and
// a slow creep of latency does not drag it up before it counts as grown.
const (
	meshFall = 0.3
	meshRise = 0.02
)

// meshFade is what LoadAtBaseline keeps each judged tick; meshAtBase is
// how close to its baseline the own latency must be for the load to count
// as answered at the baseline; meshLess is the share of LoadAtBaseline
// below which a growth happened at clearly less load.
// meshWorkDrift is the factor by which the seconds a request takes apart
// from queueing may differ from what they were when the capacity was
// measured before that capacity no longer sizes the service: a capacity
// measured while a callee or data store was slow (a thread pool held by
// slow queries) is that many times too low once it is fast again, and
// one measured while it was fast too high once it is slow.
const meshWorkDrift = 2

const (
	meshFade   = 0.9995
	meshAtBase = 1.1
	meshLess   = 0.9
)

// meshParams are MeshSpec's values with the defaults filled in.
type meshParams struct {
	growth, minGrowth, util, drain, minResp, startup float64
}

func paramsOf(m *MeshSpec) meshParams {
	p := meshParams{growth: m.Growth, minGrowth: m.MinGrowth.Seconds(), util: m.TargetUtilization, drain: m.DrainTime.Seconds(), minResp: m.MinResponses}
	if !(p.growth > 0) {
		p.growth = DefaultMeshGrowth
	}
	if !(p.minGrowth > 0) {
		p.minGrowth = DefaultMeshMinGrowth.Seconds()
	}
	if !(p.util > 0 && p.util <= 1) {
		p.util = DefaultMeshTargetUtilization
	}
	if !(p.drain > 0) {
		p.drain = DefaultMeshDrainTime.Seconds()
	}
	if !(p.minResp > 0) {
		p.minResp = DefaultMeshMinResponses
	}
	p.startup = m.StartupTime.Seconds()
	if !(p.startup > 0) {
		p.startup = DefaultMeshStartupTime.Seconds()
	}
	return p
}

// meshUsable says whether Decide may read the mesh observation, and if not
// the status its results take.
func meshUsable(o *MeshObservation, staleAfter time.Duration, now time.Time) (ObservationStatus, string) {
	switch {
	case o == nil:
		return StatusMissing, "no mesh observation"
	case o.Status != StatusOK:
		st := o.Status
		if st == "" {
			st = StatusMissing
		}
		return st, o.Error
	case o.Time.IsZero():
		return StatusInvalid, "mesh observation without a time"
	case o.Time.After(now.Add(meshSkew)):
		return StatusInvalid, fmt.Sprintf("mesh observation stamped %s ahead of the tick", o.Time.Sub(now))
	case staleAfter > 0 && now.Sub(o.Time) > staleAfter:
		return StatusStale, fmt.Sprintf("mesh observation is %s old (stale after %s)", now.Sub(o.Time), staleAfter)
	}
	return StatusOK, ""
}

// meshIndex maps workload names to service indexes, rebuilt when the spec
// or its mesh spec is not the one it was built for.
func (c *decideCache) meshIndex(spec Spec) {
	if c.meshIdx != nil && c.meshFor == spec.Mesh {
		return
	}
	c.meshFor = spec.Mesh
	c.meshIdx = make(map[string]int, len(spec.Services))
	for i := range spec.Services {
		name := spec.Services[i].Name
		if w, ok := spec.Mesh.Workloads[name]; ok && w != "" {
			name = w
		}
		c.meshIdx[name] = i
	}
}

// meshAcc is one service's sums over its mesh edges in one tick.
type meshAcc struct {
	// down and out are Σ rate × mean latency over edges to managed
	// services and to everything else; calls counts the managed ones.
	down, out float64
	calls     int
	// top and topOut are the edges with the largest rate × latency, -1
	// for none.
	top, topOut         int
	topShare, topOutSum float64
	// held is the calls per second its callers hold back: a caller whose
	// requests queue answers fewer of them than arrive, so it also makes
	// fewer of its calls than the demand behind it would.
	held float64
}

// meshStep reads the mesh observation into the services' evaluations: the
// call graph (mesh edges between managed services, beside DependsOn), each
// service's own latency, its verdict against its history, and the result
// the mesh adds to its signals. It runs after the signals and before
// attribution.
func meshStep(c *decideCache, spec Spec, snap Snapshot, evals []svcEval, now time.Time) {
	c.meshIndex(spec)
	n := len(evals)
	st, why := meshUsable(snap.Mesh, spec.StaleAfter, now)
	if st != StatusOK {
		// Nothing is judged and nothing learned; a service the mesh has
		// been sizing keeps its replicas (missing data never scales down).
		for i := range evals {
			e := &evals[i]
			if e.meshHist.Measured && e.obs.Found {
				e.addMesh(SignalResult{Name: meshSignal, Kind: KindMesh, Status: st, Note: why})
				e.anyBad = true
			}
		}
		return
	}
	o := snap.Mesh
	p := paramsOf(spec.Mesh)
	win := o.Window.Seconds()
	if !(win > 0) {
		win = time.Minute.Seconds()
	}
	if cap(c.meshAcc) < n {
		c.meshAcc = make([]meshAcc, n)
	}
	acc := c.meshAcc[:n]
	for i := range acc {
		acc[i] = meshAcc{top: -1, topOut: -1}
	}
	// Pass 1: sums per caller, and its managed callees (as pairs, for
	// pass 2). Edges come sorted by caller: one lookup per caller.
	pairs := c.meshPairs[:0]
	lastFrom, i, ok, heldPer := "", 0, false, 0.0
	for k := range o.Edges {
		ed := &o.Edges[k]
		if k == 0 || ed.From != lastFrom {
			lastFrom = ed.From
			i, ok = c.meshIdx[ed.From]
			heldPer = heldShare(o.Inbound[ed.From], p, win)
		}
		if !ok || !finiteNonNeg(ed.Rate) || !finiteNonNeg(ed.LatencyMean) || ed.Rate < spec.Mesh.MinEdgeRate {
			continue
		}
		a := &acc[i]
		w := ed.Rate * ed.LatencyMean
		j := -1
		if !ed.External {
			if jj, ok := c.meshIdx[ed.To]; ok && jj != i {
				j = jj
			}
		}
		if j >= 0 {
			acc[j].held += ed.Rate * heldPer
			pairs = append(pairs, [2]int{i, j})
			a.down += w
			a.calls++
			if a.top < 0 || w > a.topShare {
				a.top, a.topShare = k, w
			}
		} else {
			a.out += w
			if a.topOut < 0 || w > a.topOutSum {
				a.topOut, a.topOutSum = k, w
			}
		}
	}
	// Pass 2: each service's dependencies are its DependsOn and then its
	// managed callees, in one flat slice.
	total := 0
	for i := range evals {
		total += len(evals[i].deps) + acc[i].calls
	}
	if cap(c.meshDeps) < total {
		c.meshDeps = make([]int, total)
	}
	flat := c.meshDeps[:total]
	off := 0
	for i := range evals {
		e := &evals[i]
		k := copy(flat[off:], e.deps)
		e.deps = flat[off : off+k : off+k+acc[i].calls]
		off += k + acc[i].calls
	}
	for _, pr := range pairs {
		evals[pr[0]].deps = append(evals[pr[0]].deps, pr[1])
	}
	c.meshPairs = pairs
	// The verdicts go out in the decisions: a fresh slice each tick, so a
	// plan never shares them with the next.
	verdicts := make([]MeshVerdict, n)
	for i := range evals {
		e := &evals[i]
		e.meshTraverse = true
		in, has := o.Inbound[workloadOf(spec.Mesh, e.spec.Name)]
		judgeMesh(e, p, win, in, has, &acc[i], o.Edges, &verdicts[i], now)
	}
}

// meshMaxHeld is the most a caller's queue is taken to hold back, as a
// share of the calls it makes: a caller that answers a third of what
// arrives is stalled, and its ratio says little of the demand behind it.
const meshMaxHeld = 1.0

// heldShare is how many more calls than it makes a caller whose requests
// queue would make if it answered all that arrives, per call made: its
// arrivals over its answers, less one. Zero unless a queue builds there by
// the rule that tells a queue from a window's noise, with the answers a
// verdict needs; at most meshMaxHeld.
func heldShare(in MeshInbound, p meshParams, win float64) float64 {
	lam, resp := in.RequestRate, in.ResponseRate
	if !finiteNonNeg(lam) || !finiteNonNeg(resp) || resp*win < p.minResp {
		return 0
	}
	if lam <= resp*(1+meshOutrun) || (lam-resp)*win < meshQueued {
		return 0
	}
	return math.Min(meshMaxHeld, lam/resp-1)
}

func workloadOf(m *MeshSpec, service string) string {
	if w, ok := m.Workloads[service]; ok && w != "" {
		return w
	}
	return service
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

// judgeMesh decomposes one service's inbound latency, judges it against
// the service's history, learns the next history and adds the mesh's
// result to its signals when there is something to say.
func judgeMesh(e *svcEval, p meshParams, win float64, in MeshInbound, has bool, a *meshAcc, edges []MeshEdge, v *MeshVerdict, now time.Time) {
	h := e.meshHist // the previous history (Decide copied it)
	if !e.obs.Found {
		return
	}
	if !has || !finiteNonNeg(in.RequestRate) || !finiteNonNeg(in.ResponseRate) || !finiteNonNeg(in.LatencyMean) {
		if h.Measured {
			e.addMesh(SignalResult{Name: meshSignal, Kind: KindMesh, Status: StatusMissing, Note: "no inbound traffic measured by the mesh"})
			e.anyBad = true
		}
		return
	}
	cur, ready := e.obs.CurrentReplicas, e.obs.ReadyReplicas
	started := now
	if pd := e.prev.Pending; pd != nil && pd.To == cur && pd.To > pd.From && !pd.Time.After(now) {
		started = pd.Time // the scale-up that started them
	}
	learnStartup(&h, cur, ready, now, started)
	lam := in.RequestRate
	// What arrives once the callers answer their own queues: the calls
	// they hold back reach this service as soon as they are relieved, so
	// a scale-up sized for what arrives now is short by them.
	demand := lam + a.held
	perRep := 0.0
	if ready > 0 {
		perRep = in.ResponseRate / float64(ready)
	}
	// While a backlog drains (far more answers than requests), the
	// answers' mean holds calls made in earlier windows that this window's
	// edges do not: the decomposition would credit them to the service.
	judged := lam > 0 && in.ResponseRate*win >= p.minResp && in.ResponseRate <= lam*meshDraining
	var own, outPer, downPer float64
	if judged {
		downPer, outPer = a.down/lam, a.out/lam
		own = math.Max(0, in.LatencyMean-downPer-outPer)
		*v = MeshVerdict{Latency: in.LatencyMean, Own: own, Baseline: h.Own}
		if a.top >= 0 {
			ed := &edges[a.top]
			v.Edge, v.EdgeCalls, v.EdgeLatency = ed.To, ed.Rate/lam, ed.LatencyMean
		}
		if a.topOut >= 0 {
			v.External, v.ExternalSeconds = edges[a.topOut].To, outPer
		}
		e.verdict = v
	}
	warm := h.Samples >= meshWarmup
	// The decomposition is only as good as the means it subtracts, taken
	// over windows that end together but hold requests that started at
	// different times: its error grows with the time spent in calls, so a
	// growth smaller than a tenth of it is not told from noise.
	//
	// A mean of n latencies also wanders by about cv/√n of itself; with
	// the cv unknown, three standard errors of a cv of one are added to
	// the growth asked for, so that a thin service's noisy tail is not
	// taken for a queue.
	// The calls' means wander the same way, and their error lands in the
	// own latency whole.
	se := 0.0
	if n := in.ResponseRate * win; n > 0 {
		se = 3 / math.Sqrt(n)
	}
	noise := math.Max(p.minGrowth, (meshDecompNoise+se)*(downPer+outPer))
	grown := func(x, base float64) bool { return x > base*(1+p.growth+se) && x-base > noise }
	ownGrown := warm && judged && grown(own, h.Own)
	outGrown := warm && judged && grown(outPer, h.External)
	// Arrivals outrunning completions by more than noise: a queue builds,
	// here, when most of the time is the service's own (completions also
	// lag arrivals while the service waits on slow calls).
	saturated := lam > in.ResponseRate*(1+meshOutrun) && (lam-in.ResponseRate)*win >= meshQueued && own >= 0.5*in.LatencyMean

	// Relievable unless the evidence says the growth came without load:
	// the service answered clearly more per replica at its baseline not
	// long ago, and no queue builds now.
	cause := CauseNone
	switch {
	case ownGrown && e.spec.Pinned:
		cause = CauseSingleInstance
	case ownGrown && (saturated || h.Relieving || perRep > meshLess*h.LoadAtBaseline):
		cause = CauseQueueing
	case ownGrown:
		cause = CauseSlowerWork
	case outGrown:
		cause = CauseOutside
	}
	unrelieved := false
	if cause == CauseQueueing {
		unrelieved = checkRelief(&h, in.ResponseRate, ready, saturated, win, a, edges, now)
		if unrelieved {
			cause = CauseOutside
		}
	}
	if v != nil && e.verdict != nil {
		v.Cause = cause
	}
	e.meshCause = cause
	e.meshRoot = cause != CauseNone
	e.meshQuiet = warm && judged && cause == CauseNone

	// Learn.
	if judged {
		h.LoadAtBaseline *= meshFade
		if ready > 0 && (h.Samples == 0 || own <= meshAtBase*h.Own) {
			h.LoadAtBaseline = math.Max(h.LoadAtBaseline, perRep)
		}
		if !ownGrown {
			if h.Relieving && h.Measured {
				// The first window after a queue is the first whose
				// requests all took what a request takes in the regime
				// the capacity was measured in.
				h.Work = math.Max(h.Work, h.Own+downPer+outPer)
			}
			h.Own = ewma(h.Own, own, h.Samples == 0)
			if finiteNonNeg(in.LatencyP95) && in.LatencyP95 > 0 {
				h.P95 = ewma(h.P95, in.LatencyP95, h.P95 == 0)
			}
			h.Relieving = false
			h.ReliefFrom, h.ReliefAnswered, h.ReliefReady, h.Unrelieved = 0, 0, time.Time{}, ""
		}
		if !outGrown {
			h.External = ewma(h.External, outPer, h.Samples == 0)
		}
		if h.Samples < 1<<20 {
			h.Samples++
		}
	}
	if h.Measured && h.Work > 0 && judged && !ownGrown && !h.Relieving && cause != CauseQueueing {
		// The requests take a different time from the one the capacity
		// was measured at: it no longer says what a replica completes.
		// The mesh stops sizing the service from it until a queue
		// measures it again.
		if work := h.Own + downPer + outPer; work > meshWorkDrift*h.Work || work*meshWorkDrift < h.Work {
			h.Measured, h.Capacity, h.Work = false, 0, 0
		}
	}
	if ready > 0 && (cause == CauseNone || cause == CauseQueueing) && !saturated {
		// Completions without a queue building: a replica does at least
		// this much.
		h.Capacity = math.Max(h.Capacity, perRep)
	}
	// Without a queue building, a capacity is only taken from a growth
	// of twice the one that names the cause, with the inbound p95 grown
	// too: sizing on it outlasts the episode, and a heavy tail's few slow
	// requests move a thin service's mean but not its p95 the way a queue
	// that every request waits in does.
	p95Grown := !(in.LatencyP95 > 0 && h.P95 > 0) || in.LatencyP95 > h.P95*(1+p.growth)
	// It also takes four times the responses a verdict takes.
	knee := saturated || (own > h.Own*(1+2*p.growth+se) && p95Grown && in.ResponseRate*win >= 4*p.minResp)
	if cause == CauseQueueing && ready > 0 && perRep > 0 && knee {
		fresh := !h.Relieving && (!h.Measured || saturated)
		switch {
		case fresh:
			// Requests began to queue: a replica completes about what it
			// can now (a little less while the queue only starts, so the
			// estimate errs towards more replicas).
			h.Capacity = perRep
		case !h.Relieving:
			// Queueing below a capacity measured before: it is less now.
			h.Capacity = math.Min(h.Capacity, perRep)
		case saturated:
			// Still queueing: the best a replica was seen to do.
			h.Capacity = math.Max(h.Capacity, perRep)
		}
		// What a request takes apart from its wait in the queue: the
		// most it took while this capacity was measured (a window that
		// begins before a callee slowed down holds fewer slow calls than
		// the completions that measured the capacity).
		if work := h.Own + downPer + outPer; fresh || h.Work == 0 {
			h.Work = work
		} else {
			h.Work = math.Max(h.Work, work)
		}
		h.Measured = true
	}
	if cause == CauseQueueing {
		h.Relieving = true
	}
	if judged {
		if outGrown || cause == CauseQueueing {
			h.OutsidePeak = math.Max(h.OutsidePeak, demand)
		} else {
			h.OutsidePeak = 0
		}
	}
	e.meshHist = h
	// While the queue is worked off (queueing now, or a window in which
	// the backlog drains too fast to be judged), the stabilization window
	// remembers what the arrivals alone need.
	e.meshSteady = 0
	if h.Relieving && !unrelieved && h.Measured && h.Capacity > 0 && lam > 0 {
		e.meshSteady = ceilReplicas(demand / (p.util * h.Capacity))
	}

	// The result: sized from the measured throughput (Little's law for
	// the requests queued), or why nothing is added.
	r := SignalResult{Name: meshSignal, Kind: KindMesh, Status: StatusOK, Value: own, Target: h.Own * (1 + p.growth)}
	switch cause {
	case CauseQueueing:
		// Sized from the capacity measured as the queue began (or
		// while it lasts). Requests queued: Little's law on the own latency's growth, or
		// what arrived over the window and is not answered yet, whichever
		// is more (a queue that began within the window shows in the
		// second before the mean catches up).
		// The calls the callers held back over the window queue at them,
		// and come here as they are relieved.
		queued := math.Max(lam*math.Max(0, own-h.Own), (lam-in.ResponseRate)*win) + a.held*win
		// Replicas added now answer nothing until they are ready: until
		// then the queue keeps growing by what arrives beyond what the
		// ready ones answer, and that is worked off too.
		if h.Measured && h.Capacity > 0 {
			queued += startupGrowth(h, p, demand, in.ResponseRate, cur, ready, now)
		}
		need := demand + queued/p.drain
		prop := cur
		if h.Measured && h.Capacity > 0 {
			prop = ceilReplicas(need / (p.util * h.Capacity))
		}
		if saturated {
			prop = max(prop, cur+1)
		}
		r.Proposal = max(prop, cur)
		r.Breach = r.Proposal > cur
		held := ""
		if a.held > 0 {
			held = ", " + num(a.held) + "/s held back by callers' queues"
		}
		r.Note = fmt.Sprintf("own latency %s vs baseline %s: queueing (%s/s arriving%s, %s/s answered, %s/s per replica %s): %d replicas at %d%%",
			fmtSeconds(own), fmtSeconds(h.Own), num(lam), held, num(in.ResponseRate), num(h.Capacity), capacitySource(h.Measured), r.Proposal, int(p.util*100))
	case CauseSlowerWork:
		r.Proposal = cur
		r.Note = fmt.Sprintf("own latency %s vs baseline %s at %s/s per replica, less than the %s/s it answered at its baseline: slower own work, not relieved by replicas, none added",
			fmtSeconds(own), fmtSeconds(h.Own), num(perRep), num(h.LoadAtBaseline))
	case CauseSingleInstance:
		r.Proposal = cur
		r.Note = fmt.Sprintf("own latency %s vs baseline %s on a single instance, none added", fmtSeconds(own), fmtSeconds(h.Own))
	case CauseOutside:
		if unrelieved {
			// No more than the replicas that answered as much, at what
			// each answered before more were added: the scale-down
			// follows within the behavior's window and rates.
			r.Proposal = min(cur, max(h.ReliefFrom, 1))
			if per := h.ReliefAnswered / float64(h.ReliefFrom); per > 0 && in.ResponseRate > h.ReliefAnswered {
				r.Proposal = min(cur, max(r.Proposal, ceilReplicas(in.ResponseRate/per)))
			}
			r.Note = fmt.Sprintf("own latency %s vs baseline %s, waiting on %s: more replicas answered no more (%s/s with %d ready, %s/s with %d), none added",
				fmtSeconds(own), fmtSeconds(h.Own), h.Unrelieved, num(in.ResponseRate), ready, num(h.ReliefAnswered), h.ReliefFrom)
			break
		}
		r.Proposal = cur
		r.Value, r.Target = outPer, h.External*(1+p.growth)
		r.Note = fmt.Sprintf("%s per request in %s vs baseline %s: a destination no replica count here relieves, none added",
			fmtSeconds(outPer), v.External, fmtSeconds(h.External))
		// None are added for it, and none are kept beyond what the most
		// that arrived since it began needs at a capacity measured while
		// requests took about what they take now (the drift rule above
		// forgets any other): replicas added while the slow destination
		// first held the service's slots, before that capacity was known,
		// would otherwise be held for as long as it stays slow. The peak,
		// not the arrivals now: where callers retry, fewer replicas make
		// slower answers and more retries, and the load comes back.
		if peak := h.OutsidePeak; h.Measured && h.Capacity > 0 && peak > 0 && cur > 0 {
			ratio := peak / (p.util * h.Capacity * float64(cur))
			if need := ceilReplicas(peak / (p.util * h.Capacity)); need < cur && !tolerancesOf(e.spec.Behavior).within(ratio) {
				r.Proposal = need
				r.Note += fmt.Sprintf("; the most since it grew, %s/s, at %s/s per replica (measured) needs %d replicas at %d%%",
					num(peak), num(h.Capacity), need, int(p.util*100))
			}
		}
	default:
		if !h.Measured || !(h.Capacity > 0) {
			return
		}
		prop := ceilReplicas(lam / (p.util * h.Capacity))
		if cur > 0 && tolerancesOf(e.spec.Behavior).within(lam/(p.util*h.Capacity*float64(cur))) {
			prop = cur
		}
		if h.Relieving {
			// A backlog still drains (the own latency is not back at its
			// baseline yet): no fewer replicas until it is gone.
			prop = max(prop, cur)
		}
		r.Proposal = prop
		r.Breach = prop > cur
		r.Note = fmt.Sprintf("%s/s at %s/s per replica (measured): %d replicas at %d%%", num(lam), num(h.Capacity), prop, int(p.util*100))
	}
	// What the reason adds: why nothing is added for this cause.
	e.meshNote = ""
	if cause != CauseNone && !cause.Relievable() {
		e.meshNote = r.Note
	}
	e.addMesh(r)
	if r.Breach {
		e.satBreach = true
	}
}

// meshReliefShare is the share of what the replicas added to a queue
// should answer more (at the measured capacity each) that must show in the
// answers once they are ready, or they relieve nothing: the wait is in a
// destination they all share.
const meshReliefShare = 0.25

// checkRelief follows a queue being worked off: it notes the ready
// replicas and their answers as the queue begins, and once more replicas
// have been ready for a whole window while arrivals still outrun answers,
// it concludes the replicas do not relieve it when the answers have not
// risen by meshReliefShare of what the added ones should answer and the
// service waits on a destination outside the ones elmascale scales. It
// says whether that conclusion holds (it lasts until the own latency is
// back).
func checkRelief(h *MeshHistory, answered float64, ready int32, saturated bool, win float64, a *meshAcc, edges []MeshEdge, now time.Time) bool {
	if h.Unrelieved != "" {
		return true
	}
	if !finiteNonNeg(answered) {
		return false
	}
	if !h.Relieving || h.ReliefFrom <= 0 {
		// The queue begins: what the replicas then answer.
		h.ReliefFrom, h.ReliefAnswered, h.ReliefReady = ready, answered, time.Time{}
		return false
	}
	if ready <= h.ReliefFrom {
		h.ReliefReady = time.Time{}
		return false
	}
	if h.ReliefReady.IsZero() || now.Before(h.ReliefReady) {
		h.ReliefReady = now
	}
	if now.Sub(h.ReliefReady).Seconds() < win || !saturated || a.topOut < 0 || !h.Measured || !(h.Capacity > 0) {
		return false
	}
	added := float64(ready-h.ReliefFrom) * h.Capacity
	if answered-h.ReliefAnswered >= meshReliefShare*added {
		return false
	}
	h.Unrelieved = edges[a.topOut].To
	return true
}

// Start-ups longer than meshMaxStartup are not learned: a replica that
// long unready is failing, not starting. meshStartupRise and
// meshStartupFall are how much of a longer and of a shorter start-up the
// learned one takes in.
const (
	meshMaxStartup  = 10 * 60.0
	meshStartupRise = 0.5
	meshStartupFall = 0.2
)

// learnStartup follows the service's ready count: from the first tick
// that sees fewer replicas ready than current (or the scale-up that asked
// for them, started) to the first that sees them all ready is one
// start-up, learned when no replica was removed meanwhile (a scale-down
// during a start-up ends it early, and it says nothing). The ticks see
// its end to within an interval.
func learnStartup(h *MeshHistory, cur, ready int32, now, started time.Time) {
	switch {
	case ready < cur && h.StartingSince.IsZero():
		h.StartingSince, h.StartingFrom = started, cur
	case ready < cur && cur < h.StartingFrom:
		// Removed while starting: the episode says nothing; one begins
		// again with the count now.
		h.StartingSince, h.StartingFrom = now, cur
	case ready >= cur && !h.StartingSince.IsZero():
		d := now.Sub(h.StartingSince).Seconds()
		if cur >= h.StartingFrom && d > 0 && d <= meshMaxStartup {
			switch {
			case h.Startup == 0:
				h.Startup = d
			case d > h.Startup:
				h.Startup += meshStartupRise * (d - h.Startup)
			default:
				h.Startup += meshStartupFall * (d - h.Startup)
			}
		}
		h.StartingSince, h.StartingFrom = time.Time{}, 0
	}
}

// startupGrowth is how many more requests queue before replicas added
// now are ready: arrivals beyond what the ready replicas answer until the
// ones already starting are ready, and beyond what all current replicas
// answer for the rest of a start-up.
func startupGrowth(h MeshHistory, p meshParams, lam, answered float64, cur, ready int32, now time.Time) float64 {
	t := startupOf(h, p)
	first := t // until the replicas already starting are ready
	if ready < cur && !h.StartingSince.IsZero() {
		first = math.Min(t, math.Max(0, t-now.Sub(h.StartingSince).Seconds()))
	}
	short := math.Max(0, lam-math.Max(answered, float64(ready)*h.Capacity))
	later := math.Max(0, lam-float64(cur)*h.Capacity)
	if ready >= cur {
		later = short
	}
	return short*first + later*(t-first)
}

// startupOf is the start-up time a scale-up is sized for: the service's
// learned one, else the configured default.
func startupOf(h MeshHistory, p meshParams) float64 {
	if h.Startup > 0 {
		return h.Startup
	}
	return p.startup
}

func capacitySource(measured bool) string {
	if measured {
		return "measured as requests queued"
	}
	return "at least, seen without queueing"
}

func num(v float64) string { return fmt.Sprintf("%.3g", v) }

func ewma(old, x float64, first bool) float64 {
	if first {
		return x
	}
	if x < old {
		return old + meshFall*(x-old)
	}
	return old + meshRise*(x-old)
}

// addMesh appends the mesh's result to the service's signals, in the room
// Decide left after them.
func (e *svcEval) addMesh(r SignalResult) {
	if len(e.signals) < cap(e.signals) {
		e.signals = append(e.signals, r)
	}
}
