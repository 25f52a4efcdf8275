package simulations

import (
	"math"
	"slices"
	"time"
)

// Scores are what one run is judged on. Latencies are true per-request
// values, not the lagged metrics the policy sees.
type Scores struct {
	// ViolationSeconds is the scored time (after the warm-up) during
	// which at least one SLO was violated.
	ViolationSeconds float64 `json:"violationSeconds"`
	// EndToEnd, Services and Queues break it down per SLO.
	EndToEnd map[string]float64 `json:"endToEndViolationSeconds,omitempty"`
	Services map[string]float64 `json:"serviceViolationSeconds,omitempty"`
	Queues   map[string]float64 `json:"queueViolationSeconds,omitempty"`
	// ReplicaSeconds is the cost: the integral of existing pods (starting,
	// ready or terminating) over time, all services.
	ReplicaSeconds float64 `json:"replicaSeconds"`
	// FloorReplicaSeconds is the part of ReplicaSeconds no policy controls:
	// every service's floor (ServiceBounds: a managed service's minReplicas
	// in the scenario's elmascale configuration, a pinned or single-instance
	// service at one, anything unmanaged at its replicas) over the scored
	// time.
	FloorReplicaSeconds float64 `json:"floorReplicaSeconds"`
	// ElasticReplicaSeconds is ReplicaSeconds above the floor: what scaling
	// spent, the figure policies are compared on. A floor of 49 replicas
	// all day makes raw replica-seconds of policies that differ several
	// fold above the floor look within a few percent of each other.
	ElasticReplicaSeconds float64 `json:"elasticReplicaSeconds"`
	// RelievableViolationSeconds is ViolationSeconds in the windows in
	// which the run missed an SLO that the reference (the oracle policy,
	// same seed) met in that window: the violations some scaling could
	// have avoided. A window the reference misses one SLO in still counts
	// for the others, so an SLO nothing can meet hides no other. Set by
	// ScoreRelievable; nil when no reference ran.
	RelievableViolationSeconds *float64 `json:"relievableViolationSeconds,omitempty"`
	// ReplicaSecondsByService for the services whose count changed.
	ReplicaSecondsByService map[string]float64 `json:"replicaSecondsByService,omitempty"`
	// ScaleActions counts replica changes written (churn).
	ScaleActions          int            `json:"scaleActions"`
	ScaleActionsByService map[string]int `json:"scaleActionsByService,omitempty"`
	// Recovery after each of the scenario's marks.
	Recovery []Recovery `json:"recovery,omitempty"`
	// QueueWaitP95 over the whole run, seconds, by queue.
	QueueWaitP95 map[string]float64 `json:"queueWaitP95,omitempty"`
	// EndToEndP95 over the whole run, seconds, by entry service.
	EndToEndP95 map[string]float64 `json:"endToEndP95,omitempty"`
	// Saturated is, for each data store and single-instance service that
	// saturated, the scored seconds in which it did: windows in which its
	// requests waited longer on average for a slot or connection than a
	// mean service time (an M/M/1 at over 50% load, a pool of many
	// connections near its limit), or its oldest waiting request is older
	// than the window. No replica count relieves these.
	Saturated map[string]float64 `json:"saturatedSeconds,omitempty"`
	// FailedRequests counts, by entry service, requests from outside that
	// failed because a call ran out of attempts (see Call.Timeout).
	FailedRequests map[string]uint64 `json:"failedRequests,omitempty"`
	// Timeouts counts, by callee, attempts its callers abandoned.
	Timeouts map[string]uint64 `json:"timeouts,omitempty"`
	// NodeSeconds and PendingPodSeconds, with a node pool: the nodes that
	// existed, and the pods that waited for room, over the scored time.
	NodeSeconds       float64 `json:"nodeSeconds,omitempty"`
	PendingPodSeconds float64 `json:"pendingPodSeconds,omitempty"`
}

// Recovery is the time from a mark until the end of the last SLO
// violation within its horizon (zero when none). Recovered is false when
// the violation lasts to the horizon's end.
type Recovery struct {
	Mark      string  `json:"mark"`
	Seconds   float64 `json:"seconds"`
	Recovered bool    `json:"recovered"`
}

// Series are per-window time series of a run, for plots. Keys are
// "load/<service|queue>" (arrivals per second), "replicas/<service>"
// (existing pods), "wait/<service>" (mean wait for a slot, in mean service
// times), "p95/<service>" (end-to-end p95 of requests entering
// there, seconds), "queueWait/<queue>" (p95, seconds) and
// "backlog/<queue>" (messages).
type Series struct {
	Step   time.Duration
	Values map[string][]float64
	// Violating[k] says whether scored window k (covering (k·Step,
	// (k+1)·Step]) violated at least one SLO; false during the warm-up.
	Violating []bool
	// Missed[k] lists the SLOs window k violated, by their place among
	// the scenario's end-to-end, then service, then queue SLOs; nil when
	// it violated none or is in the warm-up.
	Missed [][]int32
}

type sloRef struct {
	name  string
	idx   int32
	slo   float64
	reach []int32 // services whose stuck requests also count (end to end)
	secs  float64
	// recent holds the last windows' latencies, newest at recent[n%len].
	recent [minSampleWindows]logHist
	n      int
}

// A p95 of a few dozen requests is decided by their two or three slowest,
// which would make a quiet night hour violate on ordinary tail latency
// that no amount of capacity removes (the oracle would "violate" too). A
// window with fewer than minSamples completions is therefore judged
// together with the windows before it, up to minSampleWindows of them
// (five minutes at the default 10s window), as an SLO dashboard widens
// its window when traffic is thin. Busy windows are judged alone.
const (
	minSamples       = 200
	minSampleWindows = 30
)

// violate counts a violating window once the warm-up is over.
func (r *sloRef) violate(m *sim, window float64) {
	if m.now > float64(m.warmup) {
		r.secs += window
	}
}

// p95 records the window's histogram and returns the p95 over it and as
// many earlier windows as needed to reach minSamples.
func (r *sloRef) p95(w *logHist, scratch *logHist) float64 {
	r.recent[r.n%minSampleWindows].copyFrom(w)
	r.n++
	scratch.reset()
	for k := 0; k < minSampleWindows && k < r.n && scratch.n < minSamples; k++ {
		scratch.merge(&r.recent[(r.n-1-k)%minSampleWindows])
	}
	return scratch.quantile(0.95)
}

// scorer watches a sim window by window.
type scorer struct {
	sc      *Scenario
	e2e     []sloRef
	svc     []sloRef
	queue   []sloRef
	any     []bool
	anySecs float64
	window  float64
	series  Series
	lastPub []uint64
	scratch logHist
	missed  []int32 // this window's, before it is copied into the series
	// The series' columns, fixed when the scorer is made so that a window
	// appends by index instead of building and hashing a key per value;
	// keys[c] names column c, and the slot fields give each value's
	// column (names of services and queues may coincide: one column then
	// takes both, in the order they are added).
	keys                      []string
	cols                      [][]float64
	e2eP95, e2eLoad, queueAge []int
	qLoad, qBacklog           []int
	svcReplicas, svcWait      []int
	svcStretch                []int // -1 for a service without a CPU limit
}

func newScorer(sc *Scenario) *scorer {
	s := &scorer{sc: sc, window: sc.SLO.Window.Seconds()}
	for _, l := range sc.SLO.EndToEnd {
		i := int32(sc.ServiceIndex(l.Name))
		s.e2e = append(s.e2e, sloRef{name: l.Name, idx: i, slo: l.P95.Seconds(), reach: reachable(sc, i)})
	}
	for _, l := range sc.SLO.Services {
		s.svc = append(s.svc, sloRef{name: l.Name, idx: int32(sc.ServiceIndex(l.Name)), slo: l.P95.Seconds()})
	}
	for _, l := range sc.SLO.Queues {
		s.queue = append(s.queue, sloRef{name: l.Name, idx: int32(sc.QueueIndex(l.Name)), slo: l.P95.Seconds()})
	}
	n := int(sc.Duration/sc.SLO.Window) + 1
	s.any = make([]bool, 0, n)
	s.series = Series{Step: sc.SLO.Window}
	s.lastPub = make([]uint64, len(sc.Queues))
	index := map[string]int{}
	col := func(key string) int {
		c, ok := index[key]
		if !ok {
			c = len(s.keys)
			index[key] = c
			s.keys = append(s.keys, key)
			s.cols = append(s.cols, make([]float64, 0, n))
		}
		return c
	}
	for _, r := range s.e2e {
		s.e2eP95 = append(s.e2eP95, col("p95/"+r.name))
		s.e2eLoad = append(s.e2eLoad, col("load/"+r.name))
	}
	for _, r := range s.queue {
		s.queueAge = append(s.queueAge, col("queueWait/"+r.name))
	}
	for _, q := range sc.Queues {
		s.qLoad = append(s.qLoad, col("load/"+q.Name))
		s.qBacklog = append(s.qBacklog, col("backlog/"+q.Name))
	}
	for _, v := range sc.Services {
		s.svcReplicas = append(s.svcReplicas, col("replicas/"+v.Name))
		s.svcWait = append(s.svcWait, col("wait/"+v.Name))
		c := -1
		if v.CPULimitMilli > 0 {
			c = col("throttle/" + v.Name)
		}
		s.svcStretch = append(s.svcStretch, c)
	}
	return s
}

// finalSeries is the run's series: every column that holds a value,
// under its key.
func (s *scorer) finalSeries() Series {
	out := s.series
	out.Values = make(map[string][]float64, len(s.keys))
	for c, k := range s.keys {
		if len(s.cols[c]) > 0 {
			out.Values[k] = s.cols[c]
		}
	}
	return out
}

// reachable lists the services a request entering at i may visit.
func reachable(sc *Scenario, i int32) []int32 {
	seen := make([]bool, len(sc.Services))
	var out []int32
	var walk func(j int32)
	walk = func(j int32) {
		if seen[j] {
			return
		}
		seen[j] = true
		out = append(out, j)
		for _, c := range sc.Services[j].Calls {
			walk(int32(sc.ServiceIndex(c.Service)))
		}
	}
	walk(i)
	return out
}

func (s *scorer) add(col int, v float64) {
	s.cols[col] = append(s.cols[col], v)
}

// onWindow closes a scoring window. A window violates a latency SLO when
// the p95 of the requests completed in it exceeds the target, or when a
// request still waiting for a slot is already older than the target (so a
// stalled service, which completes nothing, cannot look healthy).
func (s *scorer) onWindow(m *sim) {
	now := m.now
	headAge := func(si int32) float64 {
		v := &m.svcs[si]
		if v.wait.size == 0 {
			return 0
		}
		return now - m.reqs[v.wait.front()].arrive
	}
	any := false
	for k := range s.e2e {
		r := &s.e2e[k]
		v := &m.svcs[r.idx]
		p95 := r.p95(&v.winEntry, &s.scratch)
		bad := p95 > r.slo
		for _, j := range r.reach {
			if headAge(j) > r.slo {
				bad = true
			}
		}
		if bad {
			r.violate(m, s.window)
			any = true
			s.missed = append(s.missed, int32(k))
		}
		s.add(s.e2eP95[k], nanToZero(p95))
		s.add(s.e2eLoad[k], float64(v.entryArrivals)/s.window)
		v.entryArrivals = 0
	}
	for k := range s.svc {
		r := &s.svc[k]
		v := &m.svcs[r.idx]
		if r.p95(&v.win, &s.scratch) > r.slo || headAge(r.idx) > r.slo {
			r.violate(m, s.window)
			any = true
			s.missed = append(s.missed, int32(len(s.e2e)+k))
		}
	}
	for k := range s.queue {
		r := &s.queue[k]
		q := &m.qs[r.idx]
		p95 := r.p95(&q.win, &s.scratch)
		age := 0.0
		if q.ready.size > 0 {
			age = now - m.reqs[q.ready.front()].arrive
		}
		if p95 > r.slo || age > r.slo {
			r.violate(m, s.window)
			any = true
			s.missed = append(s.missed, int32(len(s.e2e)+len(s.svc)+k))
		}
		s.add(s.queueAge[k], math.Max(nanToZero(p95), age))
	}
	for i := range m.qs {
		q := &m.qs[i]
		s.add(s.qLoad[i], float64(q.published-s.lastPub[i])/s.window)
		s.lastPub[i] = q.published
		s.add(s.qBacklog[i], float64(int64(q.ready.size)+q.unacked))
		q.win.reset()
	}
	for i := range m.svcs {
		v := &m.svcs[i]
		s.add(s.svcReplicas[i], float64(v.live))
		v.win.reset()
		v.winEntry.reset()
		if v.m.Store != "" || v.m.SingleInstance {
			if (v.started >= 20 && v.waitSum > float64(v.started)*v.m.ServiceTime.MeanSeconds()) || headAge(int32(i)) > s.window {
				if now > float64(m.warmup) {
					v.satSecs += s.window
				}
			}
		}
		// Mean wait for a slot in service times, for the reference's repair.
		wait := 0.0
		if v.started > 0 {
			wait = v.waitSum / float64(v.started) / v.m.ServiceTime.MeanSeconds()
		}
		if h := headAge(int32(i)); h > v.m.ServiceTime.MeanSeconds() {
			wait = math.Max(wait, h/v.m.ServiceTime.MeanSeconds())
		}
		s.add(s.svcWait[i], wait)
		v.waitSum, v.started = 0, 0
		// Mean lengthening of the work started under the CPU limit.
		if c := s.svcStretch[i]; c >= 0 {
			st := 0.0
			if v.limStarts > 0 {
				st = v.stretch / float64(v.limStarts)
			}
			s.add(c, st)
			v.limStarts, v.stretch = 0, 0
		}
	}
	if any && now > float64(m.warmup) {
		s.anySecs += s.window
	}
	s.any = append(s.any, any)
	scored := any && now > float64(m.warmup)
	s.series.Violating = append(s.series.Violating, scored)
	var missed []int32
	if scored {
		missed = append([]int32(nil), s.missed...)
	}
	s.series.Missed = append(s.series.Missed, missed)
	s.missed = s.missed[:0]
}

func nanToZero(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// scores sums up a finished run.
func (s *scorer) scores(m *sim) Scores {
	m.flushWindow()
	sc := Scores{ViolationSeconds: s.anySecs, NodeSeconds: m.nodeSecs, PendingPodSeconds: m.pendingSecs}
	for i := range m.svcs {
		v := &m.svcs[i]
		if v.satSecs > 0 {
			if sc.Saturated == nil {
				sc.Saturated = map[string]float64{}
			}
			sc.Saturated[v.m.Name] = v.satSecs
		}
		if v.failedEntry > 0 {
			if sc.FailedRequests == nil {
				sc.FailedRequests = map[string]uint64{}
			}
			sc.FailedRequests[v.m.Name] = v.failedEntry
		}
		if v.timeouts > 0 {
			if sc.Timeouts == nil {
				sc.Timeouts = map[string]uint64{}
			}
			sc.Timeouts[v.m.Name] = v.timeouts
		}
	}
	if len(s.e2e) > 0 {
		sc.EndToEnd = map[string]float64{}
		sc.EndToEndP95 = map[string]float64{}
		for _, r := range s.e2e {
			sc.EndToEnd[r.name] = r.secs
			sc.EndToEndP95[r.name] = round3(nanToZero(m.svcs[r.idx].allEntry.quantile(0.95)))
		}
	}
	if len(s.svc) > 0 {
		sc.Services = map[string]float64{}
		for _, r := range s.svc {
			sc.Services[r.name] = r.secs
		}
	}
	if len(s.queue) > 0 {
		sc.Queues = map[string]float64{}
	}
	for _, r := range s.queue {
		sc.Queues[r.name] = r.secs
	}
	if len(m.qs) > 0 {
		sc.QueueWaitP95 = map[string]float64{}
		for i := range m.qs {
			sc.QueueWaitP95[m.qs[i].m.Name] = round3(nanToZero(m.qs[i].all.quantile(0.95)))
		}
	}
	sc.ReplicaSecondsByService = map[string]float64{}
	sc.ScaleActionsByService = map[string]int{}
	for i := range m.svcs {
		v := &m.svcs[i]
		sc.ReplicaSeconds += v.replicaSeconds
		if v.actions > 0 {
			sc.ReplicaSecondsByService[v.m.Name] = v.replicaSeconds
			sc.ScaleActionsByService[v.m.Name] = v.actions
		}
		sc.ScaleActions += v.actions
	}
	scored := float64(m.step - m.warmup)
	for i := range s.sc.Services {
		floor, _, _ := ServiceBounds(s.sc, i)
		sc.FloorReplicaSeconds += float64(floor) * scored
	}
	sc.ElasticReplicaSeconds = sc.ReplicaSeconds - sc.FloorReplicaSeconds
	for _, mk := range s.sc.Marks {
		sc.Recovery = append(sc.Recovery, s.recovery(mk))
	}
	return sc
}

func (s *scorer) recovery(mk Mark) Recovery {
	w := s.sc.SLO.Window
	// Window k covers (k·w, (k+1)·w]; the first one after the mark:
	from := int(mk.At / w)
	to := min(int((mk.At+mk.Horizon)/w), len(s.any))
	last := -1
	for k := from; k < to; k++ {
		if s.any[k] {
			last = k
		}
	}
	r := Recovery{Mark: mk.Name, Recovered: true}
	if last < 0 {
		return r
	}
	r.Seconds = (time.Duration(last+1)*w - mk.At).Seconds()
	r.Recovered = last < to-1
	return r
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// ScoreRelievable sets RelievableViolationSeconds on every result of one
// scenario and seed from the reference run among them (the oracle
// policy): a window counts when the result missed in it an SLO the
// reference met in it. Without a reference among them it does nothing and
// reports false.
func ScoreRelievable(results []*Result) bool {
	var ref *Result
	for _, r := range results {
		if r.Policy == PolicyOracle {
			ref = r
		}
	}
	if ref == nil {
		return false
	}
	w := ref.Series.Step.Seconds()
	for _, r := range results {
		var secs float64
		for k, bad := range r.Series.Violating {
			if !bad {
				continue
			}
			var refMissed []int32
			if k < len(ref.Series.Missed) {
				refMissed = ref.Series.Missed[k]
			}
			if k >= len(r.Series.Missed) {
				// No SLO-by-SLO record (a series not made by the scorer):
				// the window counts when the reference met everything.
				if len(refMissed) == 0 {
					secs += w
				}
				continue
			}
			for _, slo := range r.Series.Missed[k] {
				if !slices.Contains(refMissed, slo) {
					secs += w
					break
				}
			}
		}
		r.Scores.RelievableViolationSeconds = &secs
	}
	return true
}

// ServiceBounds returns the replica bounds of scenario service i as the
// scenario's elmascale configuration sets them: its minReplicas and
// maxReplicas when the configuration manages it, one and one when it is
// pinned or single-instance, and its fixed replicas when nothing manages
// it (a data store, or a service the configuration leaves out).
func ServiceBounds(sc *Scenario, i int) (minR, maxR int32, managed bool) {
	m := &sc.Services[i]
	minR, maxR = m.Replicas, m.Replicas
	if sc.Elmascale != nil {
		for k, ps := range sc.Elmascale.Policy.Services {
			if sc.Elmascale.Services[k].Target.Name != m.Name && ps.Name != m.Name {
				continue
			}
			minR, maxR, managed = ps.MinReplicas, ps.MaxReplicas, true
			if ps.Pinned {
				minR, maxR = 1, 1
			}
			break
		}
	}
	if m.SingleInstance {
		minR, maxR = 1, 1
	}
	if m.Store != "" {
		minR, maxR, managed = m.Replicas, m.Replicas, false
	}
	return minR, maxR, managed
}
