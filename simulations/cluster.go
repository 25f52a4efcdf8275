package simulations

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Cluster is a simulated ELMA365 cluster advancing in virtual time. It is
// the collector and the scaler the control loop talks to, so the loop and
// the policy run against it exactly as against a real cluster; it is also
// what `elmascale run` drives when no cluster is configured.
type Cluster struct {
	sc  *Scenario
	sim *sim
	// podNames[service][pod] are generated once per pod.
	podNames [][]string
	// targetOf holds, for the config last read, each of its services'
	// workload index (target) with the names it was resolved from, so
	// that the burst path's check every second or two and the tick do
	// not search the scenario's services by name for every service.
	targetOf []resolvedTarget
	// burstWant is cfg.BurstSignals(burstNames) for burstCfg, the last
	// burst check's: the check asks for the same services every time.
	burstCfg   *config.Config
	burstNames []string
	burstWant  []config.BurstWatch

	// recycle lets Observe, Collect and CollectBurst hand back the maps
	// (and CPU readings) they returned the time before, cleared and
	// filled again, instead of new ones, and CollectMesh count in the
	// same maps each time: a week of ticks and burst checks allocated
	// 3 GB of them. Only for a caller that keeps none of them
	// past its next call of the same method, as Run's loop does (the
	// daemon's recorders keep ticks, so the demo cluster does not
	// recycle); TestRecycledObservationsDecideAlike holds Run to it.
	recycle  bool
	targets  map[string]loop.TargetStatus
	signals  loop.Signals
	burstOut loop.Signals
	// inner keeps each answer's per-service maps by answer and service;
	// pods holds the pods' CPU readings of one Collect answer.
	inner [2]map[string]map[string]policy.Observation
	pods  []policy.PodSample
	// meshIn and meshEdges are CollectMesh's counts.
	meshIn    map[string]policy.MeshCounts
	meshEdges map[policy.MeshEdgeKey]policy.MeshCounts
}

// resolvedTarget is one config service's workload index and the names it
// was found by.
type resolvedTarget struct {
	name, target string
	si           int
}

var (
	_ loop.Collector     = (*Cluster)(nil)
	_ loop.MeshCollector = (*Cluster)(nil)
	_ loop.Scaler        = (*Cluster)(nil)
)

// NewCluster builds the scenario's cluster at virtual time zero, every
// service at its initial replicas and all of them ready.
func NewCluster(sc *Scenario, seed uint64) *Cluster {
	var longest time.Duration
	for _, b := range sc.Bindings {
		longest = max(longest, b.Window)
	}
	// The mesh's rate window, as the configuration under test asks for
	// it, and at least the default's for the other policies' configs.
	longest = max(longest, meshKeep)
	if sc.Elmascale != nil && sc.Elmascale.Mesh != nil {
		longest = max(longest, sc.Elmascale.Mesh.Window)
	}
	promKeep := int(longest/sc.Observation.ScrapeInterval) + 2
	statsWindow := sc.Observation.QueueRateWindow
	for _, b := range sc.Bindings {
		if b.Series == SeriesQueueUnacked {
			statsWindow = max(statsWindow, b.Window)
		}
	}
	statsKeep := int(statsWindow/sc.Observation.QueueStatsInterval) + 2
	c := &Cluster{sc: sc, sim: newSim(sc, seed, promKeep, statsKeep)}
	c.podNames = make([][]string, len(sc.Services))
	return c
}

// Scenario returns the scenario the cluster simulates.
func (c *Cluster) Scenario() *Scenario { return c.sc }

// Elapsed is the virtual time simulated so far.
func (c *Cluster) Elapsed() time.Duration { return time.Duration(c.sim.step) * time.Second }

// Now is the virtual wall-clock time: the scenario's start plus Elapsed.
func (c *Cluster) Now() time.Time { return c.sc.Start.Add(c.Elapsed()) }

// Events is the number of discrete events processed so far.
func (c *Cluster) Events() uint64 { return c.sim.events }

// AdvanceTo simulates up to virtual time t, in whole seconds (a fraction
// of a second is left for the next call). Going backwards does nothing.
func (c *Cluster) AdvanceTo(t time.Time) { c.sim.advanceTo(t.Sub(c.sc.Start).Seconds()) }

// Advance simulates d more virtual time.
func (c *Cluster) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

func (c *Cluster) at(x float64) time.Time { return c.sc.Start.Add(secondsToDuration(x)) }

// SetReplicas scales a service directly, as `kubectl scale` would. A
// single-instance service refuses more than one replica.
func (c *Cluster) SetReplicas(service string, n int32) error {
	si := c.sc.ServiceIndex(service)
	if si < 0 {
		return fmt.Errorf("no service %q in the simulated cluster", service)
	}
	if n < 0 {
		return fmt.Errorf("replicas must be >= 0")
	}
	if c.sc.Services[si].SingleInstance && n > 1 {
		return fmt.Errorf("%s cannot run as more than one instance", service)
	}
	if st := c.sc.Services[si].Store; st != "" && n != c.sim.svcs[si].desired {
		return fmt.Errorf("%s is a data store (%s): it is not scaled from here", service, st)
	}
	c.sim.setReplicas(int32(si), n)
	return nil
}

// Replicas returns a service's desired and ready replicas.
func (c *Cluster) Replicas(service string) (desired, ready int32, ok bool) {
	si := c.sc.ServiceIndex(service)
	if si < 0 {
		return 0, 0, false
	}
	v := &c.sim.svcs[si]
	return v.desired, v.readyCount(), true
}

// QueueBacklog returns a queue's ready plus unacknowledged messages now.
func (c *Cluster) QueueBacklog(queue string) (int64, bool) {
	qi := c.sc.QueueIndex(queue)
	if qi < 0 {
		return 0, false
	}
	q := &c.sim.qs[qi]
	return int64(q.ready.size) + q.unacked, true
}

func (c *Cluster) target(s config.Service) int {
	if i := c.sc.ServiceIndex(s.Target.Name); i >= 0 {
		return i
	}
	return c.sc.ServiceIndex(s.Name)
}

// targetsOf returns target(s) for each of cfg's services, by position. It
// resolves them again when the names differ from the last config's: for
// the same config they are the same strings, so checking them costs a
// pointer comparison each.
func (c *Cluster) targetsOf(cfg *config.Config) []resolvedTarget {
	if len(c.targetOf) == len(cfg.Services) {
		same := true
		for i := range cfg.Services {
			s, r := &cfg.Services[i], &c.targetOf[i]
			if s.Name != r.name || s.Target.Name != r.target {
				same = false
				break
			}
		}
		if same {
			return c.targetOf
		}
	}
	c.targetOf = c.targetOf[:0]
	for _, s := range cfg.Services {
		c.targetOf = append(c.targetOf, resolvedTarget{name: s.Name, target: s.Target.Name, si: c.target(s)})
	}
	return c.targetOf
}

// Observe implements loop.Scaler: spec and ready replicas per service.
func (c *Cluster) Observe(_ context.Context, cfg *config.Config) (map[string]loop.TargetStatus, error) {
	out := reuse(c.recycle, &c.targets, len(cfg.Services))
	ts := c.targetsOf(cfg)
	for i, s := range cfg.Services {
		si := ts[i].si
		if si < 0 {
			out[s.Name] = loop.TargetStatus{}
			continue
		}
		v := &c.sim.svcs[si]
		out[s.Name] = loop.TargetStatus{Found: true, Current: v.desired, Ready: v.readyCount()}
	}
	return out, nil
}

// Apply implements loop.Scaler: it changes replicas at once; new pods
// become ready after their start-up delay.
func (c *Cluster) Apply(_ context.Context, cfg *config.Config, plan policy.Plan) []loop.Outcome {
	out := make([]loop.Outcome, 0, len(plan.Decisions))
	for _, d := range plan.Decisions {
		o := loop.Outcome{Service: d.Service}
		s, ok := cfg.Service(d.Service)
		si := -1
		if ok {
			si = c.target(s)
		}
		switch {
		case si < 0:
			o.Err = fmt.Errorf("no workload for %s in the simulated cluster", d.Service)
		case d.Desired == c.sim.svcs[si].desired:
			o.Skipped = "no change"
		default:
			if err := c.SetReplicas(c.sc.Services[si].Name, d.Desired); err != nil {
				o.Err = err
			} else {
				o.Applied = true
				c.sim.countAction(int32(si))
			}
		}
		out = append(out, o)
	}
	return out
}

// Collect implements loop.Collector. It answers each configured signal
// from the simulated sources as they stood at their last refresh: pod CPU
// from metrics-server, latency and in-flight from Prometheus scrapes, queue
// depth and rates from the RabbitMQ management statistics.
func (c *Cluster) Collect(_ context.Context, cfg *config.Config, now time.Time) (loop.Signals, error) {
	out := reuse(c.recycle, &c.signals, len(cfg.Services))
	c.pods = c.pods[:0]
	ts := c.targetsOf(cfg)
	for i, s := range cfg.Services {
		si := ts[i].si
		obs := c.serviceMap(out, 0, s.Name, len(s.Signals))
		for _, src := range s.Signals {
			obs[src.Name] = c.observe(si, src, now)
		}
	}
	return out, nil
}

// reuse is an empty map for an answer: the one kept in *keep, cleared
// (made on first use), when the cluster recycles; a new one otherwise.
func reuse[M ~map[K]V, K comparable, V any](recycle bool, keep *M, n int) M {
	if !recycle {
		return make(M, n)
	}
	if *keep == nil {
		*keep = make(M, n)
	}
	clear(*keep)
	return *keep
}

// serviceMap puts an empty map for a service's readings in out, answer
// which's (0 Collect's, 1 CollectBurst's) from the last time when the
// cluster recycles, and returns it.
func (c *Cluster) serviceMap(out loop.Signals, which int, name string, n int) map[string]policy.Observation {
	if !c.recycle {
		m := make(map[string]policy.Observation, n)
		out[name] = m
		return m
	}
	if c.inner[which] == nil {
		c.inner[which] = map[string]map[string]policy.Observation{}
	}
	m := c.inner[which][name]
	if m == nil {
		m = make(map[string]policy.Observation, n)
		c.inner[which][name] = m
	}
	clear(m)
	out[name] = m
	return m
}

func failed(format string, args ...any) policy.Observation {
	return policy.Observation{Status: policy.StatusFailed, Error: fmt.Sprintf(format, args...)}
}

func missing(why string) policy.Observation {
	return policy.Observation{Status: policy.StatusMissing, Error: why}
}

func (c *Cluster) observe(si int, src config.SignalSource, now time.Time) policy.Observation {
	switch src.Kind {
	case policy.KindUtilization:
		if si < 0 {
			return failed("no such workload")
		}
		if src.Resource != policy.ResourceCPU {
			return failed("the simulator models CPU only, not %s", src.Resource)
		}
		return policy.Observation{Status: policy.StatusOK, Time: now, Pods: c.podSamples(si)}
	case policy.KindQueue:
		return c.observeQueue(src.Queue, now)
	default:
		v, o := c.metric(src.Metric, src.Key)
		if o.Status != policy.StatusOK {
			return o
		}
		return policy.Observation{Status: policy.StatusOK, Time: now, Value: v}
	}
}

func (c *Cluster) podSamples(si int) []policy.PodSample {
	v := &c.sim.svcs[si]
	names := c.podNames[si]
	for len(names) < len(v.pods) {
		names = append(names, v.m.Name+"-"+strconv.Itoa(len(names)))
	}
	c.podNames[si] = names
	res := c.sc.Observation.MetricsResolution
	now := c.sim.now
	// Recycling, the readings go on the end of the answer's own, so
	// readings returned earlier in the same answer stay as they were.
	var samples []policy.PodSample
	from := 0
	if c.recycle {
		samples, from = c.pods, len(c.pods)
	} else {
		samples = make([]policy.PodSample, 0, v.live)
	}
	for pi := range v.pods {
		p := &v.pods[pi]
		if p.gone {
			continue
		}
		ps := policy.PodSample{Name: names[pi], Phase: policy.PodPending, Deleting: p.terminating, Request: v.m.CPURequestMilli}
		if p.started <= now {
			ps.Phase = policy.PodRunning
			ps.StartTime = c.at(p.started)
			ps.ReadyKnown = true
			ps.Ready = p.ready
			ps.ReadyTransition = ps.StartTime
			if p.ready {
				ps.ReadyTransition = c.at(p.readyAt)
			}
		}
		if p.hasSample {
			ps.HasMetric = true
			ps.MetricTime = c.at(p.sampleAt)
			ps.MetricWindow = res
			ps.Usage = p.usageMilli
		}
		samples = append(samples, ps)
	}
	if c.recycle {
		c.pods = samples
		return samples[from:len(samples):len(samples)]
	}
	return samples
}

// metric evaluates a bound metric for a key (a service or a queue name).
func (c *Cluster) metric(name, key string) (float64, policy.Observation) {
	b, ok := c.sc.Bindings[name]
	if !ok {
		return 0, failed("metric %q has no simulator binding", name)
	}
	switch b.Series {
	case SeriesQueueMessages, SeriesQueueReady, SeriesQueueUnacked, SeriesQueuePublishRate, SeriesQueueAckRate:
		qi := c.sc.QueueIndex(key)
		if qi < 0 {
			return 0, missing("no series for queue " + key)
		}
		q := &c.sim.qs[qi]
		if q.nStats == 0 {
			return 0, missing("no queue statistics yet")
		}
		last := &q.stats[(q.nStats-1)%len(q.stats)]
		switch b.Series {
		case SeriesQueueMessages:
			return float64(last.ready + last.unacked), ok200()
		case SeriesQueueReady:
			return float64(last.ready), ok200()
		case SeriesQueueUnacked:
			if b.Window <= 0 {
				return float64(last.unacked), ok200()
			}
			// avg_over_time: the mean of the samples within the window.
			var sum float64
			n := 0
			for k := q.nStats - 1; k >= 0 && k >= q.nStats-len(q.stats); k-- {
				st := &q.stats[k%len(q.stats)]
				if st.t <= last.t-b.Window.Seconds()+1e-9 {
					break
				}
				sum += float64(st.unacked)
				n++
			}
			return sum / float64(n), ok200()
		}
		first := c.queueSampleBefore(q, last.t-b.Window.Seconds())
		if first.t >= last.t {
			return 0, missing("one sample in the rate window")
		}
		dt := last.t - first.t
		if b.Series == SeriesQueuePublishRate {
			return float64(last.published-first.published) / dt, ok200()
		}
		return float64(last.acked-first.acked) / dt, ok200()
	}
	si := c.sc.ServiceIndex(key)
	if si < 0 {
		return 0, missing("no series for service " + key)
	}
	callee := si
	if b.Series == SeriesEdgeRate {
		// The series is the caller's, by callee.
		si = c.sc.ServiceIndex(b.From)
	}
	v := &c.sim.svcs[si]
	if v.nScrapes == 0 {
		return 0, missing("not scraped yet")
	}
	last := &v.scrapes[(v.nScrapes-1)%len(v.scrapes)]
	if b.Series == SeriesInFlight {
		return float64(last.inFlight), ok200()
	}
	first := v.rangeStart(b.Window)
	if first.t >= last.t {
		return 0, missing("one sample in the rate window")
	}
	if b.Series == SeriesRequestRate {
		return float64(last.requests-first.requests) / (last.t - first.t), ok200()
	}
	if b.Series == SeriesEdgeRate {
		return float64(last.out[callee].sent-first.out[callee].sent) / (last.t - first.t), ok200()
	}
	if b.Series == SeriesFailureRate {
		return float64(last.failures-first.failures) / (last.t - first.t), ok200()
	}
	q := histogramQuantile(b.Quantile, c.sim.bounds, first.buckets, last.buckets)
	if math.IsNaN(q) {
		return 0, missing("no requests in the rate window")
	}
	return q, ok200()
}

func ok200() policy.Observation { return policy.Observation{Status: policy.StatusOK} }

// rangeStart is the oldest kept scrape within (last−window, last], as a
// range vector holds them; the service must have been scraped.
func (v *svcState) rangeStart(window time.Duration) *promSample {
	last := &v.scrapes[(v.nScrapes-1)%len(v.scrapes)]
	k := v.nScrapes - 1
	for k-1 >= 0 && k-1 >= v.nScrapes-len(v.scrapes) && v.scrapes[(k-1)%len(v.scrapes)].t > last.t-window.Seconds()+1e-9 {
		k--
	}
	return &v.scrapes[k%len(v.scrapes)]
}

// meshKeep is the least rate window the scrapes kept cover.
const meshKeep = 2 * time.Minute

// CollectMesh implements loop.MeshCollector: Linkerd's proxy series as
// the simulated Prometheus scraped them, their rates over the mesh's
// window turned into the observation by policy.NewMeshObservation, the
// same constructor a cluster's source uses. Every workload but a data
// store has a proxy: its inbound request_total, response_total (success
// classified) and response_latency_ms sum and count, and its outbound
// series by destination; a call to a data store is an edge to a
// destination outside the mesh.
func (c *Cluster) CollectMesh(_ context.Context, cfg *config.Config, now time.Time) policy.MeshObservation {
	if cfg.Mesh == nil {
		return policy.MeshObservation{Status: policy.StatusMissing, Error: "the configuration names no mesh"}
	}
	window := cfg.Mesh.Window
	// NewMeshObservation keeps nothing of the counts it is given.
	inbound := reuse(c.recycle, &c.meshIn, len(c.sc.Services))
	edges := reuse(c.recycle, &c.meshEdges, 0)
	newest := math.Inf(-1)
	for si := range c.sim.svcs {
		v := &c.sim.svcs[si]
		if v.m.Store != "" || v.nScrapes == 0 {
			continue
		}
		last := &v.scrapes[(v.nScrapes-1)%len(v.scrapes)]
		first := v.rangeStart(window)
		dt := last.t - first.t
		if dt <= 0 {
			continue
		}
		newest = math.Max(newest, last.t)
		p95 := histogramQuantile(0.95, c.sim.bounds, first.buckets, last.buckets)
		if math.IsNaN(p95) {
			p95 = 0
		}
		count := float64(last.latCount-first.latCount) / dt
		inbound[v.m.Name] = policy.MeshCounts{
			Requests:     float64(last.requests-first.requests) / dt,
			Responses:    count,
			Successes:    float64(last.successes-first.successes) / dt,
			LatencySum:   (last.latSum - first.latSum) / dt,
			LatencyCount: count,
			P95:          p95,
		}
		for to := range last.out {
			l, f := &last.out[to], &first.out[to]
			sent := l.sent - f.sent
			if sent == 0 {
				continue
			}
			resp := float64(l.resp-f.resp) / dt
			callee := &c.sc.Services[to]
			edges[policy.MeshEdgeKey{From: v.m.Name, To: callee.Name, External: callee.Store != ""}] = policy.MeshCounts{
				Requests:     float64(sent) / dt,
				Responses:    resp,
				Successes:    float64(l.succ-f.succ) / dt,
				LatencySum:   (l.lat - f.lat) / dt,
				LatencyCount: resp,
			}
		}
	}
	if len(inbound) == 0 {
		return policy.MeshObservation{Status: policy.StatusMissing, Error: "no mesh series scraped yet"}
	}
	return policy.NewMeshObservation(c.at(newest), window, inbound, edges, cfg.Mesh.MinEdgeRate)
}

// queueSampleBefore is the oldest kept sample taken after t (or the oldest
// kept one).
func (c *Cluster) queueSampleBefore(q *queueState, t float64) *queueSample {
	k := q.nStats - 1
	for k-1 >= 0 && k-1 >= q.nStats-len(q.stats) && q.stats[(k-1)%len(q.stats)].t >= t-1e-9 {
		k--
	}
	return &q.stats[k%len(q.stats)]
}

// histogramQuantile is Prometheus's histogram_quantile over the bucket
// increases between two scrapes: linear interpolation within the bucket
// holding the rank, the lowest bucket starting at zero, and the upper
// bound of the highest finite bucket when the rank falls in +Inf.
func histogramQuantile(q float64, bounds []float64, first, last []uint64) float64 {
	var total uint64
	for i := range last {
		total += last[i] - first[i]
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var cum float64
	for i := range last {
		n := float64(last[i] - first[i])
		if cum+n >= rank && n > 0 {
			if i == len(bounds) {
				return bounds[len(bounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			return lo + (bounds[i]-lo)*(rank-cum)/n
		}
		cum += n
	}
	return bounds[len(bounds)-1]
}

func (c *Cluster) observeQueue(src *config.QueueSource, now time.Time) policy.Observation {
	if src == nil {
		return failed("queue signal without source")
	}
	qo := &policy.QueueObservation{}
	var sampleAt float64
	if len(src.Queues) > 0 {
		// The RabbitMQ management API: queues add up.
		for _, name := range src.Queues {
			qi := c.sc.QueueIndex(name)
			if qi < 0 {
				return failed("queue %s not found (404)", name)
			}
			q := &c.sim.qs[qi]
			if q.nStats == 0 {
				return missing("no queue statistics yet")
			}
			last := &q.stats[(q.nStats-1)%len(q.stats)]
			first := c.queueSampleBefore(q, last.t-c.sc.Observation.QueueRateWindow.Seconds())
			qo.Backlog += float64(last.ready + last.unacked)
			qo.Unacked += float64(last.unacked)
			if dt := last.t - first.t; dt > 0 {
				qo.ArrivalRate += float64(last.published-first.published) / dt
				qo.CompletionRate += float64(last.acked-first.acked) / dt
			}
			qo.Consumers += last.consumers
			sampleAt = last.t
		}
		return policy.Observation{Status: policy.StatusOK, Time: c.at(sampleAt), Queue: qo}
	}
	v, o := c.metric(src.Backlog, src.Key)
	if o.Status != policy.StatusOK {
		return o
	}
	qo.Backlog = v
	if src.ArrivalRate != "" {
		if qo.ArrivalRate, o = c.metric(src.ArrivalRate, src.Key); o.Status != policy.StatusOK {
			return o
		}
	}
	if src.CompletionRate != "" {
		if qo.CompletionRate, o = c.metric(src.CompletionRate, src.Key); o.Status != policy.StatusOK {
			return o
		}
	}
	if src.Unacked != "" {
		// Optional, as the collector reads it: a reading that is not
		// there is left out.
		if u, uo := c.metric(src.Unacked, src.Key); uo.Status == policy.StatusOK && u >= 0 {
			qo.Unacked = u
			qo.Backlog += u
			qo.UnackedTime = now
		}
	}
	return policy.Observation{Status: policy.StatusOK, Time: now, Queue: qo}
}
