package simulations

import (
	"math"
	"math/rand/v2"
	"time"
)

// pod is one replica. Times are seconds of virtual time.
type pod struct {
	created, started, readyAt float64
	// startup is the drawn time from scheduling to readiness.
	startup float64
	// busy counts the slots held, working those doing own work (burning
	// CPU); they differ when a sync request holds its slot during calls.
	busy, working            int32
	node                     int32 // -1 while unscheduled, or without nodes
	ready, terminating, gone bool
	// cpu is the CPU time burnt so far, in seconds.
	cpu float64
	// metrics-server's view: the usage measured at the last scrape.
	scrapedCPU, scrapedAt float64
	usageMilli            int64
	sampleAt              float64
	hasSample             bool
}

type edge struct {
	to    int32
	whole int32
	// frac is the chance p of one call more than whole (the mean's
	// fractional part) as a bound on 53 random bits k: k < frac exactly
	// when the uniform k/2^53 < p, so a draw needs no float arithmetic.
	frac    uint64
	timeout float64 // seconds, 0 for none
	retries int32
}

// fracBound is edge.frac for a chance p in [0, 1): p*2^53 is exact (a
// scaling by a power of two), and an integer is below it exactly when it
// is below its ceiling.
func fracBound(p float64) uint64 { return uint64(math.Ceil(p * (1 << 53))) }

func callEdges(sc *Scenario, calls []Call) []edge {
	var out []edge
	for _, c := range calls {
		out = append(out, edge{to: int32(sc.ServiceIndex(c.Service)), whole: int32(c.Mean), frac: fracBound(c.Mean - math.Floor(c.Mean)),
			timeout: c.Timeout.Seconds(), retries: c.Retries})
	}
	return out
}

func publishEdges(sc *Scenario, pubs []Publish) []edge {
	var out []edge
	for _, p := range pubs {
		out = append(out, edge{to: int32(sc.QueueIndex(p.Queue)), whole: int32(p.Mean), frac: fracBound(p.Mean - math.Floor(p.Mean))})
	}
	return out
}

// promSample is one Prometheus scrape of a service.
type promSample struct {
	t        float64
	buckets  []uint64
	requests uint64
	inFlight int32
	// out is the caller's side of each edge, by callee.
	out []edgeCounts
	// failures is the responses classified failure (Linkerd's inbound
	// response_total{classification="failure"}).
	failures uint64
	// The inbound latency histogram's sum (seconds) and count, and the
	// responses classified success.
	latSum              float64
	latCount, successes uint64
}

// edgeCounts is the caller's side of an edge, as Linkerd's outbound series
// by dst_deployment count it: requests sent (request_total), responses (a
// timeout counts as one, a failure), those that succeeded
// (response_total by classification) and the seconds they took (the
// response_latency_ms sum). One struct, so that a response touches one
// cache line.
type edgeCounts struct {
	sent, resp, succ uint64
	lat              float64
}

// queueSample is one refresh of a queue's management statistics.
type queueSample struct {
	t                float64
	ready, unacked   int64
	published, acked uint64
	consumers        int32
}

type svcState struct {
	m        *ServiceModel
	pods     []pod
	active   []int32 // ready pods that take work, oldest first
	desired  int32
	live     int32 // pods not yet gone (they cost)
	free     int32 // free slots over active pods
	wait     ring  // synchronous requests waiting for a slot
	consumes []int32
	calls    []edge
	pubs     []edge
	// cpuPerSec is CPU seconds burnt per second of own work.
	cpuPerSec float64
	slots     int32
	// sync services hold a slot until the request's calls have answered.
	sync bool
	// limitCores is the CPU limit (0: none); slow is the phase factor in
	// force this step.
	limitCores float64
	slow       float64
	// limStarts and stretch are this window's works started under the
	// CPU limit and the sum of how much the limit lengthened each (0 for
	// one it did not), for the reference's repair.
	limStarts uint32
	stretch   float64
	// failedEntry counts requests from outside that failed (a call ran
	// out of attempts); timeouts counts attempts abandoned by callers.
	failedEntry, timeouts uint64
	// waitSum and started are this window's time waited for a slot and
	// starts, for saturation of what no policy can scale.
	waitSum float64
	started uint32
	satSecs float64

	inFlight int32
	requests uint64
	// Exact totals for checking the engine against queueing theory: the
	// integral of in-flight requests over time (up to areaT) and the sum
	// and count of completed latencies.
	area, areaT float64
	latSum      float64
	latCount    uint64
	buckets     []uint64 // Prometheus histogram, last bucket is +Inf
	// out is the caller's side of each edge, by callee, its messages'
	// calls included.
	out []edgeCounts
	// failures counts requests answered as failed (a call ran out of
	// attempts) and attempts their caller abandoned, each once;
	// successes the requests answered to a caller still waiting (or from
	// outside) with no call out of attempts.
	failures, successes uint64
	scrapes             []promSample
	nScrapes            int

	// Scoring.
	win, winEntry, all, allEntry logHist
	entryArrivals                uint64
	replicaSeconds               float64
	actions                      int
}

type queueState struct {
	m         *QueueModel
	calls     []edge
	pubs      []edge
	consumer  int32
	ready     ring
	unacked   int64
	published uint64
	acked     uint64
	cpuPerSec float64
	stats     []queueSample
	nStats    int
	win, all  logHist
}

type request struct {
	key    uint64  // identity for the request's random draws
	arrive float64 // at this service; publish time for a message
	parent int32   // request waiting for this one, -1 for none
	svc    int32
	pod    int32
	edge   int32 // next call edge to consider
	rep    int32 // further calls still to make on edge-1
	queue  int32 // queue of a message, -1 for a synchronous request
	// tok names the call this request waits on (0: none) and ptok the
	// parent's call this request answers: tokens are never reused, so an
	// answer to an attempt the parent has given up on is recognised.
	tok, ptok uint32
	attempt   int32
	entry     bool // arrived from outside the cluster
	held      bool // holds its pod's slot until it completes
	failed    bool // a call ran out of attempts
}

// sim is the discrete-event core. It knows nothing of configs or policies.
type sim struct {
	sc    *Scenario
	seed  uint64
	step  int64 // whole seconds simulated
	now   float64
	heap  *eventQueue
	svcs  []svcState
	qs    []queueState
	reqs  []request
	free  []int32
	srcs  []int32   // service index (>= 0) or -(queue index)-1 per load source
	cum   []float64 // cumulative source rates this step
	total float64
	arrRN *rand.Rand
	// Every request carries a key derived from the seed and its place in
	// the call tree (root arrival number, edge, repetition); its service
	// time, calls and publishes are drawn from the key alone. Requests are
	// thus the same objects under every policy, which compares policies on
	// common random numbers and keeps the load on internal services and
	// queues identical too.
	keySrc   keySource
	keyRN    *rand.Rand
	nArrived uint64
	// startRN draws pod start-up times; it is separate so that a policy's
	// scaling never shifts another stream.
	startRN *rand.Rand

	bounds   []float64
	lhBucket []uint8 // logHist bucket → the Prometheus bucket of its middle
	events   uint64
	onWindow func(s *sim)
	load     *Load
	tok      uint32
	// nodes is nil without a node pool; pending lists pods waiting for
	// room, oldest first.
	nodes   *nodeSet
	pending []podRef
	// pendingSecs is pod-seconds spent Pending for want of room, nodeSecs
	// node-seconds, both over the scored time.
	pendingSecs, nodeSecs float64

	scrapeEvery, resEvery, statsEvery, windowEvery int64
	// warmup is the whole seconds before scoring starts.
	warmup int64
}

// scoring reports whether the warm-up is over.
func (s *sim) scoring() bool { return s.step >= s.warmup }

// countAction notes a replica change written, once scoring has begun.
func (s *sim) countAction(si int32) {
	if s.scoring() {
		s.svcs[si].actions++
	}
}

type podRef struct{ svc, pod int32 }

func newSim(sc *Scenario, seed uint64, promKeep, statsKeep int) *sim {
	s := &sim{
		sc: sc, seed: seed, load: sc.NewLoad(seed),
		arrRN:   rand.New(rand.NewPCG(seed, 0xa5a5_0001)),
		startRN: rand.New(rand.NewPCG(seed, 0xa5a5_0002)),
		keySrc:  keySource{},
		bounds:  sc.Observation.LatencyBuckets,
	}
	s.lhBucket = make([]uint8, lhBuckets)
	for i := range s.lhBucket {
		s.lhBucket[i] = uint8(min(bucketOf(s.bounds, lhMid(i)), 255))
	}
	s.scrapeEvery = int64(sc.Observation.ScrapeInterval.Seconds())
	s.resEvery = int64(sc.Observation.MetricsResolution.Seconds())
	s.statsEvery = int64(sc.Observation.QueueStatsInterval.Seconds())
	s.windowEvery = int64(sc.SLO.Window.Seconds())
	s.warmup = int64(sc.Warmup.Seconds())
	s.keyRN = rand.New(&s.keySrc)
	s.heap = newEventQueue()
	s.reqs = make([]request, 0, 1<<14)
	s.free = make([]int32, 0, 1<<14)

	s.qs = make([]queueState, len(sc.Queues))
	for i := range sc.Queues {
		q := &s.qs[i]
		q.m = &sc.Queues[i]
		q.consumer = int32(sc.ServiceIndex(q.m.Consumer))
		q.cpuPerSec = q.m.CPUPerMessage.Seconds() / q.m.ServiceTime.MeanSeconds()
		q.stats = make([]queueSample, statsKeep)
		q.calls = callEdges(sc, q.m.Calls)
		q.pubs = publishEdges(sc, q.m.Publishes)
	}
	if sc.Nodes != nil {
		s.nodes = newNodes(sc.Nodes)
	}
	s.svcs = make([]svcState, len(sc.Services))
	for i := range sc.Services {
		m := &sc.Services[i]
		v := &s.svcs[i]
		v.m = m
		v.slots = m.Slots
		v.cpuPerSec = m.CPUPerRequest.Seconds() / m.ServiceTime.MeanSeconds()
		v.sync = m.Concurrency == ConcurrencySync
		v.limitCores = float64(m.CPULimitMilli) / 1000
		v.slow = 1
		v.buckets = make([]uint64, len(s.bounds)+1)
		v.scrapes = make([]promSample, promKeep)
		v.out = make([]edgeCounts, len(sc.Services))
		for k := range v.scrapes {
			ps := &v.scrapes[k]
			ps.buckets = make([]uint64, len(v.buckets))
			ps.out = make([]edgeCounts, len(sc.Services))
		}
		v.calls = callEdges(sc, m.Calls)
		v.pubs = publishEdges(sc, m.Publishes)
		for _, q := range m.Consumes {
			v.consumes = append(v.consumes, int32(sc.QueueIndex(q)))
		}
		// Initial pods have been ready for an hour.
		for k := int32(0); k < m.Replicas; k++ {
			node := int32(-1)
			if s.nodes != nil && m.Store == "" {
				// compileNodes checked that the initial pods fit.
				node = s.nodes.place(m.CPURequestMilli, m.MemoryRequestBytes)
			}
			v.pods = append(v.pods, pod{created: -3600, started: -3600, readyAt: -3600, ready: true, scrapedAt: -3600, node: node})
			v.active = append(v.active, int32(len(v.pods)-1))
			v.live++
			v.free += v.slots
		}
		v.desired = m.Replicas
	}
	s.cum = make([]float64, len(sc.Load))
	for _, l := range sc.Load {
		if l.Service != "" {
			s.srcs = append(s.srcs, int32(sc.ServiceIndex(l.Service)))
		} else {
			s.srcs = append(s.srcs, -int32(sc.QueueIndex(l.Queue))-1)
		}
	}
	return s
}

// draws returns how many times edge k fires for the request with key.
func (e *edge) draws(key uint64, k int, salt uint64) int32 {
	n := e.whole
	if e.frac > 0 && splitmix(key^salt^uint64(k+1)*0x9e3779b97f4a7c15)>>11 < e.frac {
		n++
	}
	return n
}

// Salts keep the draws made from one request key apart.
const (
	saltCall    = 0x63616c6c
	saltPublish = 0x7075626c
	saltTime    = 0x74696d65
	saltRoot    = 0x726f6f74
	saltChild   = 0x6368696c
	saltMessage = 0x6d657373
	saltRetry   = 0x72657472
)

// keySource is a rand.Source whose stream is reset from a request's key,
// so that a request's service time is the same whatever order requests
// are served in.
type keySource struct{ x uint64 }

func (k *keySource) Uint64() uint64 {
	k.x += 0x9e3779b97f4a7c15
	return splitmix(k.x)
}

// alloc takes a request slot for a request with key to service svc (a
// message of queue queue, or -1) on behalf of parent (or -1), arriving
// now. Its fields are set one by one: a composite literal is built on the
// stack and copied over, and the copy's wide loads stall on the narrow
// stores that just filled it in.
func (s *sim) alloc(key uint64, parent, svc, queue int32) (int32, *request) {
	var id int32
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.reqs = append(s.reqs, request{})
		id = int32(len(s.reqs) - 1)
	}
	r := &s.reqs[id]
	*r = request{}
	r.key, r.arrive = key, s.now
	r.parent, r.svc, r.pod, r.queue = parent, svc, -1, queue
	return id, r
}

// advanceTo simulates whole seconds until virtual time t (seconds).
func (s *sim) advanceTo(t float64) {
	for float64(s.step+1) <= t+1e-9 {
		start := float64(s.step)
		end := start + 1
		s.heap.advance(start)
		s.rates(start)
		next := s.nextArrival(start)
		for {
			ht := s.heap.peek()
			if next < ht && next < end {
				s.now = next
				s.events++
				s.arrive(s.pickSource())
				next = s.nextArrival(next)
				continue
			}
			if ht >= end {
				break
			}
			ev := s.heap.pop()
			s.now = ev.t
			s.events++
			v := int32(ev.a & evValueMask)
			switch ev.a >> evKindShift {
			case evDone:
				s.done(v, float64(math.Float32frombits(uint32(ev.b))))
			case evPodReady:
				s.podReady(v, ev.b)
			case evTimeout:
				s.timeout(v, uint32(ev.b))
			case evNodeAdd:
				s.nodeAdded()
			}
		}
		s.step++
		s.now = end
		s.endOfStep()
	}
}

// rates fixes each load source's rate for the step starting at start: its
// rate in the middle of the step.
func (s *sim) rates(start float64) {
	mid := secondsToDuration(start + 0.5)
	s.total = 0
	for i := range s.srcs {
		s.total += s.load.Rate(i, mid)
		s.cum[i] = s.total
	}
	for i := range s.svcs {
		if ph := s.svcs[i].m.Phases; len(ph) > 0 {
			s.svcs[i].slow = phaseFactor(ph, mid)
		}
	}
}

// phaseFactor is the service-time factor of the phase in force at t.
func phaseFactor(phases []Phase, t time.Duration) float64 {
	for _, p := range phases {
		if t >= p.From && t < p.To {
			return p.Factor
		}
	}
	return 1
}

// nextArrival draws the time of the next external arrival after t. The
// sources together are one Poisson process of the summed rate, so the
// arrivals come out in time order and never pass through the event heap;
// each then goes to a source with probability proportional to its rate.
// An arrival drawn past the step's end is simply dropped: the process is
// memoryless, so the next step draws afresh at its own rate.
func (s *sim) nextArrival(t float64) float64 {
	if s.total <= 0 {
		return math.Inf(1)
	}
	return t + s.arrRN.ExpFloat64()/s.total
}

func (s *sim) pickSource() int32 {
	u := s.arrRN.Float64() * s.total
	for i, c := range s.cum {
		if u < c {
			return int32(i)
		}
	}
	return int32(len(s.cum) - 1)
}

func (s *sim) arrive(src int32) {
	s.nArrived++
	key := splitmix(s.seed ^ saltRoot ^ s.nArrived*0xbf58476d1ce4e5b9)
	target := s.srcs[src]
	if target < 0 {
		s.publish(-target-1, key)
		return
	}
	s.svcs[target].entryArrivals++
	s.call(target, -1, 0, true, key)
}

// call makes a synchronous request to service si on behalf of parent,
// answering the parent's call tok.
func (s *sim) call(si, parent int32, tok uint32, entry bool, key uint64) {
	id, r := s.alloc(key, parent, si, -1)
	r.entry, r.ptok = entry, tok
	v := &s.svcs[si]
	v.area += float64(v.inFlight) * (s.now - v.areaT)
	v.areaT = s.now
	v.inFlight++
	v.requests++
	if v.free > 0 && v.wait.size == 0 {
		s.start(id, si, v.pick())
		return
	}
	v.wait.push(id)
}

// pick is the active pod with the fewest busy slots (a least-loaded
// balancer, as Linkerd's is in effect); it must have a free slot.
func (v *svcState) pick() int32 {
	best, busy := int32(-1), int32(math.MaxInt32)
	for _, pi := range v.active {
		if b := v.pods[pi].busy; b < busy {
			best, busy = pi, b
		}
	}
	return best
}

func (s *sim) publish(qi int32, key uint64) {
	q := &s.qs[qi]
	q.published++
	id, _ := s.alloc(key, -1, q.consumer, qi)
	v := &s.svcs[q.consumer]
	if v.free > 0 && v.wait.size == 0 && q.ready.size == 0 {
		s.start(id, q.consumer, v.pick())
		return
	}
	q.ready.push(id)
}

// start begins a request's own work on a pod. The drawn duration rides
// in the completion event, so the CPU it burns can be charged then.
//
// A phase stretches the work. A CPU limit stretches it further when the
// pod's own work in progress would burn CPU faster than the limit allows
// (the CFS quota throttles it): by demand/limit, with the demand taken as
// the work in progress when this work starts. The CPU charged is the
// unstretched work's, so a throttled pod reads at its limit.
func (s *sim) start(id, si, pi int32) {
	v := &s.svcs[si]
	p := &v.pods[pi]
	p.busy++
	p.working++
	v.free--
	r := &s.reqs[id]
	r.pod = pi
	var d, rate float64
	s.keySrc.x = r.key ^ saltTime
	wait := s.now - r.arrive
	if r.queue >= 0 {
		q := &s.qs[r.queue]
		q.unacked++
		w := atLeast(wait, 1e-6)
		q.win.add(w)
		q.all.add(w)
		d = q.m.ServiceTime.drawKeyed(&s.keySrc, s.keyRN)
		rate = q.cpuPerSec
	} else {
		d = v.m.ServiceTime.drawKeyed(&s.keySrc, s.keyRN)
		rate = v.cpuPerSec
		v.started++
		v.waitSum += wait
	}
	d *= v.slow
	cpu := d
	if v.limitCores > 0 {
		v.limStarts++
		if demand := float64(p.working) * rate; demand > v.limitCores {
			d *= demand / v.limitCores
			v.stretch += demand/v.limitCores - 1
		}
	}
	s.heap.push(s.now+d, evDone, id, int32(math.Float32bits(float32(cpu))))
}

// done ends a request's own work, which burnt cpu seconds of work at the
// request's CPU rate: the request publishes its messages and goes on to
// its calls; its slot goes to the next waiting work unless the service
// holds slots during calls.
func (s *sim) done(id int32, cpu float64) {
	r := &s.reqs[id]
	si, pi := r.svc, r.pod
	v := &s.svcs[si]
	p := &v.pods[pi]
	p.working--
	pubs, calls := v.pubs, v.calls
	if r.queue >= 0 {
		q := &s.qs[r.queue]
		p.cpu += cpu * q.cpuPerSec
		pubs, calls = q.pubs, q.calls
	} else {
		p.cpu += cpu * v.cpuPerSec
	}
	key := r.key
	for k := range pubs {
		e := &pubs[k]
		for n := e.draws(key, k, saltPublish); n > 0; n-- {
			s.publish(e.to, splitmix(key^saltMessage^uint64(k)<<32^uint64(n)))
		}
	}
	if v.sync && len(calls) > 0 {
		s.reqs[id].held = true
	} else {
		s.release(si, pi)
	}
	s.proceed(id)
}

// release frees a slot of pod pi: it goes to waiting work, or, on a pod
// being removed, brings its end nearer.
func (s *sim) release(si, pi int32) {
	v := &s.svcs[si]
	p := &v.pods[pi]
	p.busy--
	if p.terminating {
		if p.busy == 0 {
			s.podGone(si, pi)
		}
		return
	}
	v.free++
	s.fill(si, pi)
}

// podGone removes a pod that has finished its work, freeing its room on
// its node for pods waiting for one.
func (s *sim) podGone(si, pi int32) {
	v := &s.svcs[si]
	p := &v.pods[pi]
	p.gone = true
	v.live--
	if p.node >= 0 {
		s.nodes.release(p.node, v.m.CPURequestMilli, v.m.MemoryRequestBytes)
		p.node = -1
		s.schedulePending()
	}
}

// fill gives a pod's free slots to waiting work: synchronous requests
// first, then messages of the queues the service consumes, in order.
func (s *sim) fill(si, pi int32) {
	v := &s.svcs[si]
	for v.pods[pi].busy < v.slots {
		if v.wait.size > 0 {
			s.start(v.wait.pop(), si, pi)
			continue
		}
		took := false
		for _, qi := range v.consumes {
			if q := &s.qs[qi]; q.ready.size > 0 {
				s.start(q.ready.pop(), si, pi)
				took = true
				break
			}
		}
		if !took {
			return
		}
	}
}

// callsOf is the call edges of a request: its message's queue's for a
// message, its service's otherwise.
func (s *sim) callsOf(r *request) []edge {
	if r.queue >= 0 {
		return s.qs[r.queue].calls
	}
	return s.svcs[r.svc].calls
}

// proceed makes a request's next call, or completes it. Only the issue
// or finish that ends it can grow s.reqs, so r stays valid throughout.
func (s *sim) proceed(id int32) {
	r := &s.reqs[id]
	calls := s.callsOf(r)
	for {
		if r.rep > 0 {
			r.rep--
			s.issue(id, calls, r.edge-1, r.rep)
			return
		}
		if int(r.edge) >= len(calls) {
			s.finish(id)
			return
		}
		k := r.edge
		e := &calls[k]
		r.edge++
		if n := e.draws(r.key, int(k), saltCall); n > 0 {
			r.rep = n - 1
			s.issue(id, calls, k, r.rep)
			return
		}
	}
}

// issue makes one attempt of request id's call on edge k (rep calls of
// it still to come), arming the edge's timeout. A retry is a new request
// with a key of its own.
func (s *sim) issue(id int32, calls []edge, k, rep int32) {
	s.tok++
	if s.tok == 0 {
		s.tok++
	}
	tok := s.tok
	r := &s.reqs[id]
	r.tok = tok
	key := childKey(r.key, k, rep)
	if r.attempt > 0 {
		key = splitmix(key ^ saltRetry ^ uint64(r.attempt))
	}
	e := &calls[k]
	s.svcs[r.svc].out[e.to].sent++
	if e.timeout > 0 {
		s.heap.push(s.now+e.timeout, evTimeout, id, int32(tok))
	}
	s.call(e.to, id, tok, false, key)
}

// timeout fires when request id has waited its edge's timeout for call
// tok: unless answered meanwhile, the attempt is abandoned (the callee
// carries on), and the call is retried or, out of attempts, fails.
func (s *sim) timeout(id int32, tok uint32) {
	r := &s.reqs[id]
	if r.tok != tok {
		return
	}
	r.tok = 0
	calls := s.callsOf(r)
	e := &calls[r.edge-1]
	s.svcs[e.to].timeouts++
	s.svcs[e.to].failures++
	// The caller's proxy answers the abandoned attempt as failed.
	ec := &s.svcs[r.svc].out[e.to]
	ec.resp++
	ec.lat += e.timeout
	if r.attempt < e.retries {
		r.attempt++
		s.issue(id, calls, r.edge-1, r.rep)
		return
	}
	r.attempt = 0
	r.failed = true
	s.proceed(id)
}

// childKey is the key of the call on edge k with rep calls still to come.
func childKey(parent uint64, k, rep int32) uint64 {
	return splitmix(parent ^ saltChild ^ uint64(k+1)<<32 ^ uint64(rep+1))
}

// finish completes a request: a message is acknowledged; a synchronous
// request is recorded and resumes its caller, unless the caller has given
// up on it.
func (s *sim) finish(id int32) {
	// A pointer, not a copy of the 56-byte request: s.reqs grows only
	// under the proceed at the end, after r's last use.
	r := &s.reqs[id]
	if r.held {
		s.release(r.svc, r.pod)
	}
	s.free = append(s.free, id)
	if r.queue >= 0 {
		q := &s.qs[r.queue]
		q.unacked--
		q.acked++
		return
	}
	v := &s.svcs[r.svc]
	lat := atLeast(s.now-r.arrive, 1e-6)
	v.area += float64(v.inFlight) * (s.now - v.areaT)
	v.areaT = s.now
	v.inFlight--
	v.latSum += lat
	v.latCount++
	li := lhIndex(lat)
	v.buckets[s.bucket(lat, li)]++
	v.win.addAt(li)
	if r.entry {
		v.winEntry.addAt(li)
		if r.failed {
			v.failedEntry++
		}
	}
	waited := r.parent < 0 || s.reqs[r.parent].tok == r.ptok
	if r.failed && waited {
		v.failures++ // (an abandoned attempt was counted when its caller gave up)
	} else if waited {
		v.successes++
	}
	if r.parent >= 0 {
		if pr := &s.reqs[r.parent]; pr.tok == r.ptok {
			ec := &s.svcs[pr.svc].out[r.svc]
			ec.resp++
			ec.lat += lat
			if !r.failed {
				ec.succ++
			}
			pr.tok = 0
			pr.attempt = 0
			if r.failed {
				pr.failed = true
			}
			s.proceed(r.parent)
		}
	}
}

// bucket is the Prometheus bucket (le) latency x falls in: a guess from
// its logHist bucket li, corrected against the bounds.
func (s *sim) bucket(x float64, li int) int {
	b := int(s.lhBucket[li])
	for b > 0 && x <= s.bounds[b-1] {
		b--
	}
	for b < len(s.bounds) && x > s.bounds[b] {
		b++
	}
	return b
}

// bucketOf is the Prometheus bucket (le) a latency falls in.
func bucketOf(bounds []float64, x float64) int {
	lo, hi := 0, len(bounds)
	for lo < hi {
		m := (lo + hi) / 2
		if x <= bounds[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// podReady makes a started pod take work, unless it was removed meanwhile.
func (s *sim) podReady(si, pi int32) {
	v := &s.svcs[si]
	p := &v.pods[pi]
	if p.terminating || p.gone {
		return
	}
	p.ready = true
	v.active = append(v.active, pi)
	v.free += v.slots
	s.fill(si, pi)
}

// setReplicas changes a service's replica count as a ReplicaSet would: new
// pods are scheduled on a node with room (or stay Pending until one has
// room), then run but stay unready until their start-up completes;
// removed pods are chosen unready first, then the most recently ready,
// and finish the work they hold.
func (s *sim) setReplicas(si int32, n int32) {
	v := &s.svcs[si]
	m := v.m
	for v.desired < n {
		startup := m.Startup.Seconds()
		if j := m.StartupJitter.Seconds(); j > 0 {
			startup += (2*s.startRN.Float64() - 1) * j
		}
		v.pods = append(v.pods, pod{created: s.now, startup: startup, node: -1, started: math.Inf(1), readyAt: math.Inf(1)})
		pi := int32(len(v.pods) - 1)
		v.live++
		v.desired++
		if !s.schedule(si, pi) {
			s.pending = append(s.pending, podRef{si, pi})
			s.askForNodes()
		}
	}
	for v.desired > n {
		victim := int32(-1)
		for pi := len(v.pods) - 1; pi >= 0; pi-- {
			if p := &v.pods[pi]; !p.ready && !p.terminating && !p.gone {
				victim = int32(pi)
				break
			}
		}
		if victim < 0 {
			// Most recently ready first.
			k := -1
			for j, pi := range v.active {
				if k < 0 || v.pods[pi].readyAt >= v.pods[v.active[k]].readyAt {
					k = j
				}
			}
			victim = v.active[k]
			v.active = append(v.active[:k], v.active[k+1:]...)
			v.free -= v.slots - v.pods[victim].busy
		}
		p := &v.pods[victim]
		p.terminating = true
		v.desired--
		if p.busy == 0 {
			s.podGone(si, victim)
		}
	}
}

// schedule binds a new pod to a node with room, when there is one, and
// starts it: Pending for the scheduling delay, then running and unready
// for the rest of its start-up.
func (s *sim) schedule(si, pi int32) bool {
	v := &s.svcs[si]
	p := &v.pods[pi]
	if s.nodes != nil {
		node := s.nodes.place(v.m.CPURequestMilli, v.m.MemoryRequestBytes)
		if node < 0 {
			return false
		}
		p.node = node
	}
	p.started = s.now + v.m.SchedulingDelay.Seconds()
	p.readyAt = s.now + p.startup
	p.scrapedAt = p.started
	s.heap.push(p.readyAt, evPodReady, si, pi)
	return true
}

// schedulePending binds waiting pods, oldest first, to the room there is
// now; pods removed meanwhile are dropped.
func (s *sim) schedulePending() {
	kept := s.pending[:0]
	for _, r := range s.pending {
		p := &s.svcs[r.svc].pods[r.pod]
		if p.gone || p.terminating {
			continue
		}
		if !s.schedule(r.svc, r.pod) {
			kept = append(kept, r)
		}
	}
	s.pending = kept
}

// askForNodes is the cluster autoscaler: when pods are Pending for want
// of room it orders the nodes their requests need, each ready after the
// pool's AddDelay.
func (s *sim) askForNodes() {
	if s.nodes == nil {
		return
	}
	var cpu, mem int64
	for _, r := range s.pending {
		v := &s.svcs[r.svc]
		if p := &v.pods[r.pod]; !p.gone && !p.terminating {
			cpu += v.m.CPURequestMilli
			mem += v.m.MemoryRequestBytes
		}
	}
	for k := s.nodes.wanted(cpu, mem); k > 0; k-- {
		s.nodes.coming++
		s.heap.push(s.now+s.sc.Nodes.AddDelay.Seconds(), evNodeAdd, 0, 0)
	}
}

// nodeAdded makes an ordered node take pods.
func (s *sim) nodeAdded() {
	s.nodes.coming--
	s.nodes.add()
	s.schedulePending()
	if len(s.pending) > 0 {
		s.askForNodes()
	}
}

// readyCount is the number of ready pods taking work.
func (v *svcState) readyCount() int32 { return int32(len(v.active)) }

// endOfStep does what happens on whole seconds: cost accounting, the
// scrapes, and the scoring window.
func (s *sim) endOfStep() {
	t := s.step
	if t > s.warmup {
		for i := range s.svcs {
			s.svcs[i].replicaSeconds += float64(s.svcs[i].live)
		}
		if s.nodes != nil {
			s.nodeSecs += float64(len(s.nodes.freeCPU))
			for _, r := range s.pending {
				if p := &s.svcs[r.svc].pods[r.pod]; !p.gone && !p.terminating {
					s.pendingSecs++
				}
			}
		}
	}
	if t%s.scrapeEvery == 0 {
		s.scrapeProm()
	}
	if t%s.resEvery == 0 {
		s.scrapeCPU()
	}
	if t%s.statsEvery == 0 {
		s.refreshQueueStats()
	}
	if t%s.windowEvery == 0 {
		s.flushWindow()
		if s.onWindow != nil {
			s.onWindow(s)
		} else {
			for i := range s.svcs {
				s.svcs[i].win.reset()
				s.svcs[i].winEntry.reset()
			}
		}
	}
}

// flushWindow adds the window's latencies to the run's: recording each
// request once, in the window's histogram, halves the hot path's work.
func (s *sim) flushWindow() {
	for i := range s.svcs {
		v := &s.svcs[i]
		v.all.merge(&v.win)
		v.allEntry.merge(&v.winEntry)
	}
}

func (s *sim) scrapeProm() {
	for i := range s.svcs {
		v := &s.svcs[i]
		ps := &v.scrapes[v.nScrapes%len(v.scrapes)]
		ps.t = s.now
		copy(ps.buckets, v.buckets)
		copy(ps.out, v.out)
		ps.latSum, ps.latCount, ps.successes = v.latSum, v.latCount, v.successes
		ps.failures = v.failures
		ps.requests = v.requests
		ps.inFlight = v.inFlight
		v.nScrapes++
	}
}

// scrapeCPU is metrics-server: each running pod's usage over the time since
// its previous sample. A pod gets its first sample once it has run for a
// whole resolution period.
func (s *sim) scrapeCPU() {
	res := float64(s.resEvery)
	for i := range s.svcs {
		v := &s.svcs[i]
		for pi := range v.pods {
			p := &v.pods[pi]
			if p.gone || p.started > s.now {
				continue
			}
			span := s.now - p.scrapedAt
			if span < res-1e-9 && !p.hasSample {
				continue
			}
			if span > 0 {
				cores := (p.cpu - p.scrapedCPU) / span
				p.usageMilli = int64(cores*1000) + v.m.IdleMilli
			}
			p.scrapedCPU, p.scrapedAt = p.cpu, s.now
			p.sampleAt = s.now
			p.hasSample = true
		}
	}
}

func (s *sim) refreshQueueStats() {
	for i := range s.qs {
		q := &s.qs[i]
		st := &q.stats[q.nStats%len(q.stats)]
		*st = queueSample{t: s.now, ready: int64(q.ready.size), unacked: q.unacked, published: q.published, acked: q.acked,
			consumers: s.svcs[q.consumer].readyCount()}
		q.nStats++
	}
}

func secondsToDuration(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
