package simulations

import (
	"math"
	"math/rand/v2"
	"time"
)

// pod is one replica. Times are seconds of virtual time.
type pod struct {
	created, started, readyAt float64
	busy                      int32
	ready, terminating, gone  bool
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
	frac  float64
}

// promSample is one Prometheus scrape of a service.
type promSample struct {
	t        float64
	buckets  []uint64
	requests uint64
	inFlight int32
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

	inFlight int32
	requests uint64
	// Exact totals for checking the engine against queueing theory: the
	// integral of in-flight requests over time (up to areaT) and the sum
	// and count of completed latencies.
	area, areaT float64
	latSum      float64
	latCount    uint64
	buckets     []uint64 // Prometheus histogram, last bucket is +Inf
	scrapes     []promSample
	nScrapes    int

	// Scoring.
	win, winEntry, all, allEntry logHist
	entryArrivals                uint64
	replicaSeconds               float64
	actions                      int
}

type queueState struct {
	m         *QueueModel
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
	entry  bool  // arrived from outside the cluster
}

// sim is the discrete-event core. It knows nothing of configs or policies.
type sim struct {
	sc    *Scenario
	seed  uint64
	step  int64 // whole seconds simulated
	now   float64
	heap  eventHeap
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
	events   uint64
	onWindow func(s *sim)

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

func newSim(sc *Scenario, seed uint64, promKeep, statsKeep int) *sim {
	s := &sim{
		sc: sc, seed: seed,
		arrRN:   rand.New(rand.NewPCG(seed, 0xa5a5_0001)),
		startRN: rand.New(rand.NewPCG(seed, 0xa5a5_0002)),
		keySrc:  keySource{},
		bounds:  sc.Observation.LatencyBuckets,
	}
	s.scrapeEvery = int64(sc.Observation.ScrapeInterval.Seconds())
	s.resEvery = int64(sc.Observation.MetricsResolution.Seconds())
	s.statsEvery = int64(sc.Observation.QueueStatsInterval.Seconds())
	s.windowEvery = int64(sc.SLO.Window.Seconds())
	s.warmup = int64(sc.Warmup.Seconds())
	s.keyRN = rand.New(&s.keySrc)
	s.heap.ev = make([]event, 0, 1<<14)
	s.reqs = make([]request, 0, 1<<14)
	s.free = make([]int32, 0, 1<<14)

	s.qs = make([]queueState, len(sc.Queues))
	for i := range sc.Queues {
		q := &s.qs[i]
		q.m = &sc.Queues[i]
		q.consumer = int32(sc.ServiceIndex(q.m.Consumer))
		q.cpuPerSec = q.m.CPUPerMessage.Seconds() / q.m.ServiceTime.MeanSeconds()
		q.stats = make([]queueSample, statsKeep)
	}
	s.svcs = make([]svcState, len(sc.Services))
	for i := range sc.Services {
		m := &sc.Services[i]
		v := &s.svcs[i]
		v.m = m
		v.slots = m.Slots
		v.cpuPerSec = m.CPUPerRequest.Seconds() / m.ServiceTime.MeanSeconds()
		v.buckets = make([]uint64, len(s.bounds)+1)
		v.scrapes = make([]promSample, promKeep)
		for k := range v.scrapes {
			v.scrapes[k].buckets = make([]uint64, len(v.buckets))
		}
		for _, c := range m.Calls {
			v.calls = append(v.calls, edge{to: int32(sc.ServiceIndex(c.Service)), whole: int32(c.Mean), frac: c.Mean - math.Floor(c.Mean)})
		}
		for _, p := range m.Publishes {
			v.pubs = append(v.pubs, edge{to: int32(sc.QueueIndex(p.Queue)), whole: int32(p.Mean), frac: p.Mean - math.Floor(p.Mean)})
		}
		for _, q := range m.Consumes {
			v.consumes = append(v.consumes, int32(sc.QueueIndex(q)))
		}
		// Initial pods have been ready for an hour.
		for k := int32(0); k < m.Replicas; k++ {
			v.pods = append(v.pods, pod{created: -3600, started: -3600, readyAt: -3600, ready: true, scrapedAt: -3600})
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
	if e.frac > 0 && unit(splitmix(key^salt^uint64(k+1)*0x9e3779b97f4a7c15)) < e.frac {
		n++
	}
	return n
}

// unit maps 64 random bits to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// Salts keep the draws made from one request key apart.
const (
	saltCall    = 0x63616c6c
	saltPublish = 0x7075626c
	saltTime    = 0x74696d65
	saltRoot    = 0x726f6f74
	saltChild   = 0x6368696c
	saltMessage = 0x6d657373
)

// keySource is a rand.Source whose stream is reset from a request's key,
// so that a request's service time is the same whatever order requests
// are served in.
type keySource struct{ x uint64 }

func (k *keySource) Uint64() uint64 {
	k.x += 0x9e3779b97f4a7c15
	return splitmix(k.x)
}

func (s *sim) alloc() int32 {
	if n := len(s.free); n > 0 {
		id := s.free[n-1]
		s.free = s.free[:n-1]
		return id
	}
	s.reqs = append(s.reqs, request{})
	return int32(len(s.reqs) - 1)
}

// advanceTo simulates whole seconds until virtual time t (seconds).
func (s *sim) advanceTo(t float64) {
	for float64(s.step+1) <= t+1e-9 {
		start := float64(s.step)
		end := start + 1
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
		s.total += s.sc.SourceRate(s.seed, i, mid)
		s.cum[i] = s.total
	}
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
	s.call(target, -1, true, key)
}

// call makes a synchronous request to service si on behalf of parent.
func (s *sim) call(si, parent int32, entry bool, key uint64) {
	id := s.alloc()
	s.reqs[id] = request{key: key, arrive: s.now, parent: parent, svc: si, pod: -1, queue: -1, entry: entry}
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
	id := s.alloc()
	s.reqs[id] = request{key: key, arrive: s.now, parent: -1, svc: q.consumer, pod: -1, queue: qi}
	v := &s.svcs[q.consumer]
	if v.free > 0 && v.wait.size == 0 && q.ready.size == 0 {
		s.start(id, q.consumer, v.pick())
		return
	}
	q.ready.push(id)
}

// start begins a request's own work on a pod. The drawn duration rides
// in the completion event, so the CPU it burns can be charged then.
func (s *sim) start(id, si, pi int32) {
	v := &s.svcs[si]
	v.pods[pi].busy++
	v.free--
	r := &s.reqs[id]
	r.pod = pi
	var d float64
	s.keySrc.x = r.key ^ saltTime
	if r.queue >= 0 {
		q := &s.qs[r.queue]
		q.unacked++
		wait := math.Max(s.now-r.arrive, 1e-6)
		q.win.add(wait)
		q.all.add(wait)
		d = q.m.ServiceTime.draw(s.keyRN)
	} else {
		d = v.m.ServiceTime.draw(s.keyRN)
	}
	s.heap.push(s.now+d, evDone, id, int32(math.Float32bits(float32(d))))
}

// done ends a request's own work of duration d: the pod's slot goes to the
// next waiting work, and the request goes on to its calls or completes.
func (s *sim) done(id int32, d float64) {
	r := &s.reqs[id]
	si, pi := r.svc, r.pod
	v := &s.svcs[si]
	p := &v.pods[pi]
	p.busy--
	if r.queue >= 0 {
		q := &s.qs[r.queue]
		p.cpu += d * q.cpuPerSec
		q.unacked--
		q.acked++
		s.free = append(s.free, id)
	} else {
		p.cpu += d * v.cpuPerSec
		key := r.key
		for k := range v.pubs {
			e := &v.pubs[k]
			for n := e.draws(key, k, saltPublish); n > 0; n-- {
				s.publish(e.to, splitmix(key^saltMessage^uint64(k)<<32^uint64(n)))
			}
		}
	}
	if p.terminating {
		if p.busy == 0 {
			p.gone = true
			v.live--
		}
	} else {
		v.free++
		s.fill(si, pi)
	}
	if s.reqs[id].queue < 0 {
		s.proceed(id)
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

// proceed makes a request's next call, or completes it.
func (s *sim) proceed(id int32) {
	for {
		r := &s.reqs[id]
		v := &s.svcs[r.svc]
		if r.rep > 0 {
			r.rep--
			s.call(v.calls[r.edge-1].to, id, false, childKey(r.key, r.edge-1, r.rep))
			return
		}
		if int(r.edge) >= len(v.calls) {
			s.finish(id)
			return
		}
		k := r.edge
		e := &v.calls[k]
		r.edge++
		if n := e.draws(r.key, int(k), saltCall); n > 0 {
			r.rep = n - 1
			s.call(e.to, id, false, childKey(r.key, k, r.rep))
			return
		}
	}
}

// childKey is the key of the call on edge k with rep calls still to come.
func childKey(parent uint64, k, rep int32) uint64 {
	return splitmix(parent ^ saltChild ^ uint64(k+1)<<32 ^ uint64(rep+1))
}

// finish records a completed synchronous request and resumes its caller.
func (s *sim) finish(id int32) {
	r := s.reqs[id]
	v := &s.svcs[r.svc]
	lat := math.Max(s.now-r.arrive, 1e-6)
	v.area += float64(v.inFlight) * (s.now - v.areaT)
	v.areaT = s.now
	v.inFlight--
	v.latSum += lat
	v.latCount++
	v.buckets[bucketOf(s.bounds, lat)]++
	v.win.add(lat)
	v.all.add(lat)
	if r.entry {
		v.winEntry.add(lat)
		v.allEntry.add(lat)
	}
	s.free = append(s.free, id)
	if r.parent >= 0 {
		s.proceed(r.parent)
	}
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
// pods start (pending for the scheduling delay, then running but unready
// until their start-up completes); removed pods are chosen unready first,
// then the most recently ready, and finish the work they hold.
func (s *sim) setReplicas(si int32, n int32) {
	v := &s.svcs[si]
	m := v.m
	for v.desired < n {
		startup := m.Startup.Seconds()
		if j := m.StartupJitter.Seconds(); j > 0 {
			startup += (2*s.startRN.Float64() - 1) * j
		}
		p := pod{created: s.now, started: s.now + m.SchedulingDelay.Seconds(), readyAt: s.now + startup}
		p.scrapedAt = p.started
		v.pods = append(v.pods, p)
		pi := int32(len(v.pods) - 1)
		s.heap.push(p.readyAt, evPodReady, si, pi)
		v.live++
		v.desired++
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
		if p.busy == 0 {
			p.gone = true
			v.live--
		}
		v.desired--
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
	if t%s.windowEvery == 0 && s.onWindow != nil {
		s.onWindow(s)
	}
}

func (s *sim) scrapeProm() {
	for i := range s.svcs {
		v := &s.svcs[i]
		ps := &v.scrapes[v.nScrapes%len(v.scrapes)]
		ps.t = s.now
		copy(ps.buckets, v.buckets)
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
