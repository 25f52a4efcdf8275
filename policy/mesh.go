package policy

import (
	"math"
	"slices"
	"strings"
	"time"
)

// MeshObservation is what the service mesh's proxies measured over one
// rate window: every managed workload's inbound traffic and every call one
// workload made to another, as the caller's proxy saw it. With Linkerd these
// are the proxies' request_total, response_total and response_latency_ms
// series (direction="inbound" and direction="outbound" with dst_* labels).
// The call graph is its Edges; nothing in it is written by hand.
type MeshObservation struct {
	Status ObservationStatus `json:"status"`
	// Time the rates end at (the source's timestamp).
	Time time.Time `json:"time,omitempty"`
	// Window the rates are taken over.
	Window time.Duration `json:"window,omitempty"`
	// Inbound by workload name (the scale target's name).
	Inbound map[string]MeshInbound `json:"inbound,omitempty"`
	// Edges sorted by From, then To; at most one per pair.
	Edges []MeshEdge `json:"edges,omitempty"`
	// Error explains a failed observation.
	Error string `json:"error,omitempty"`
}

// MeshInbound is one workload's inbound traffic over the window.
type MeshInbound struct {
	// RequestRate is requests per second arriving at its pods' proxies
	// (the demand, retries included).
	RequestRate float64 `json:"requestRate"`
	// ResponseRate is responses per second (the throughput).
	ResponseRate float64 `json:"responseRate"`
	// SuccessShare is the share of responses classified as successes, in
	// [0, 1]; -1 when the source cannot tell.
	SuccessShare float64 `json:"successShare"`
	// LatencyMean is the mean seconds from request to response at its
	// proxies; 0 when there were no responses.
	LatencyMean float64 `json:"latencyMean"`
	// LatencyP95 is the 95th percentile in seconds; 0 when unknown.
	LatencyP95 float64 `json:"latencyP95,omitempty"`
}

// MeshEdge is the calls one workload made to another over the window.
type MeshEdge struct {
	From string `json:"from"`
	// To is the destination workload; for an External destination, what
	// the proxy knows of it (a service name or an authority).
	To string `json:"to"`
	// External is true when the destination is not a meshed workload: a
	// data store, a service outside the cluster.
	External bool `json:"external,omitempty"`
	// Rate is calls per second, every attempt counted.
	Rate float64 `json:"rate"`
	// LatencyMean is the mean seconds a call took as the caller saw it.
	LatencyMean float64 `json:"latencyMean"`
	// SuccessShare as for MeshInbound.
	SuccessShare float64 `json:"successShare"`
}

// MeshCounts are the per-second rates, over one window, of the mesh's
// counters for one workload's inbound traffic or one edge, as a source
// reads them (PromQL's rate() of the proxy's series summed over pods).
type MeshCounts struct {
	Requests  float64
	Responses float64
	// Successes is the rate of responses classified as successes; negative
	// when unknown.
	Successes float64
	// LatencySum is the rate of the latency histogram's sum, in seconds
	// (Linkerd's response_latency_ms sum divided by 1000), and
	// LatencyCount the rate of its count.
	LatencySum   float64
	LatencyCount float64
	// P95 in seconds, 0 when unknown.
	P95 float64
}

// MeshEdgeKey names one edge of MeshCounts.
type MeshEdgeKey struct {
	From, To string
	External bool
}

// NewMeshObservation builds a MeshObservation from the counters' rates,
// the one way both a cluster's sources and the simulator turn mesh counters
// into what Decide reads. Entries with a NaN, infinite or negative rate are
// dropped and named in Error (Status stays ok when anything is left); an
// edge slower than minEdgeRate calls per second (health checks, noise) is
// dropped without a word.
func NewMeshObservation(t time.Time, window time.Duration, inbound map[string]MeshCounts, edges map[MeshEdgeKey]MeshCounts, minEdgeRate float64) MeshObservation {
	o := MeshObservation{Status: StatusOK, Time: t, Window: window, Inbound: make(map[string]MeshInbound, len(inbound))}
	var bad []string
	for name, c := range inbound {
		if !c.valid() {
			bad = append(bad, name)
			continue
		}
		o.Inbound[name] = MeshInbound{
			RequestRate:  c.Requests,
			ResponseRate: c.Responses,
			SuccessShare: c.successShare(),
			LatencyMean:  c.mean(),
			LatencyP95:   c.P95,
		}
	}
	for k, c := range edges {
		if !c.valid() {
			bad = append(bad, k.From+"→"+k.To)
			continue
		}
		if c.Requests < minEdgeRate || k.From == "" || k.To == "" {
			continue
		}
		o.Edges = append(o.Edges, MeshEdge{From: k.From, To: k.To, External: k.External, Rate: c.Requests, LatencyMean: c.mean(), SuccessShare: c.successShare()})
	}
	slices.SortFunc(o.Edges, func(a, b MeshEdge) int {
		if c := strings.Compare(a.From, b.From); c != 0 {
			return c
		}
		return strings.Compare(a.To, b.To)
	})
	if len(bad) > 0 {
		slices.Sort(bad)
		o.Error = "invalid mesh rates (NaN, infinite or negative) for " + strings.Join(bad, ", ")
		if len(o.Inbound) == 0 && len(o.Edges) == 0 {
			o.Status = StatusInvalid
		}
	}
	return o
}

func (c MeshCounts) valid() bool {
	for _, v := range [...]float64{c.Requests, c.Responses, c.LatencySum, c.LatencyCount, c.P95} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return false
		}
	}
	return !math.IsNaN(c.Successes) && !math.IsInf(c.Successes, 0)
}

func (c MeshCounts) mean() float64 {
	if c.LatencyCount <= 0 {
		return 0
	}
	return c.LatencySum / c.LatencyCount
}

func (c MeshCounts) successShare() float64 {
	if c.Successes < 0 || c.Responses <= 0 {
		return -1
	}
	return math.Min(1, c.Successes/c.Responses)
}

// MeshSpec is how Decide uses Snapshot.Mesh; nil leaves the mesh unused
// (attribution then follows DependsOn only). Every zero value stands for
// the default named beside it.
type MeshSpec struct {
	// MinEdgeRate: calls per second below which an edge is not part of the
	// call graph.
	MinEdgeRate float64 `json:"minEdgeRate,omitempty"`
	// Workloads maps a service to the workload its mesh series carry, when
	// the two names differ; a service not named here is its own workload.
	Workloads map[string]string `json:"workloads,omitempty"`
	// Growth is how far above its baseline a service's own latency (or its
	// time in destinations outside the mesh) must be, relative to the
	// baseline, to count as grown: 0.5 means 150% of the baseline
	// (default 0.5).
	Growth float64 `json:"growth,omitempty"`
	// MinGrowth is the least growth that counts, however small the
	// baseline, so that a 2 ms service is not a bottleneck at 3 ms
	// (default 20ms).
	MinGrowth time.Duration `json:"minGrowth,omitempty"`
	// TargetUtilization is the share of a replica's measured throughput
	// planned for when the mesh sizes a service (0 < u <= 1, default 0.8).
	TargetUtilization float64 `json:"targetUtilization,omitempty"`
	// DrainTime is how soon the requests queued at a bottleneck (estimated
	// by Little's law from its own latency's growth) should be worked off,
	// on top of keeping up with arrivals (default 10s).
	DrainTime time.Duration `json:"drainTime,omitempty"`
	// MinResponses is the fewest responses within the window a service
	// needs before its mean latencies are judged (default 50): a mean of a
	// handful of requests is noise.
	MinResponses float64 `json:"minResponses,omitempty"`
	// StartupTime is how long a new replica is assumed to take to become
	// ready until the service's own start-ups have been seen (each
	// service's is then learned from its ready count): the queue keeps
	// growing for that long after a scale-up, and the scale-up is sized
	// for it too (default 30s).
	StartupTime time.Duration `json:"startupTime,omitempty"`
}

// Defaults of MeshSpec's zero values.
const (
	DefaultMeshGrowth            = 0.5
	DefaultMeshMinGrowth         = 20 * time.Millisecond
	DefaultMeshTargetUtilization = 0.8
	DefaultMeshDrainTime         = 10 * time.Second
	DefaultMeshMinResponses      = 50
	DefaultMeshStartupTime       = 30 * time.Second
)

// MeshHistory is what Decide learns of one service from the mesh, kept in
// its ServiceState: a few numbers, updated in place every tick.
type MeshHistory struct {
	// Samples counts the ticks that fed the baselines (capped); verdicts
	// wait for a few.
	Samples int32 `json:"samples,omitempty"`
	// Own is the baseline of the service's own latency in seconds: what
	// remains of its inbound mean after its calls to other workloads,
	// learned while it had not grown (it follows falls quickly and rises
	// slowly, so it stays near the lower envelope).
	Own float64 `json:"own,omitempty"`
	// External is the baseline of the seconds per request spent in calls
	// to destinations elmascale does not scale (outside the mesh, data
	// stores, unmanaged workloads), learned the same way.
	External float64 `json:"external,omitempty"`
	// P95 is the baseline of the inbound p95 in seconds, learned the same
	// way (0 when the source gives none).
	P95 float64 `json:"p95,omitempty"`
	// LoadAtBaseline is the most requests per second per ready replica the
	// service answered with its own latency at the baseline, fading slowly
	// (by half in about six hours of ticks): own latency that grows at
	// clearly less load than this grew without load.
	LoadAtBaseline float64 `json:"loadAtBaseline,omitempty"`
	// Capacity is the requests per second one replica completes: measured
	// when its requests began to queue and while they did (Measured), and
	// otherwise the most it was seen to complete without queueing, a
	// lower bound.
	Capacity float64 `json:"capacity,omitempty"`
	Measured bool    `json:"measured,omitempty"`
	// Work is the seconds a request took apart from queueing (the own
	// latency's baseline and the time in calls) when Capacity was
	// measured, 0 when unknown. A replica's slots complete about
	// slots / work per second, so a measured capacity describes the
	// service only while its requests take about as long as they did.
	Work float64 `json:"work,omitempty"`
	// Relieving is true while a relievable growth of the own latency is
	// being worked off; it ends when the own latency is back.
	Relieving bool `json:"relieving,omitempty"`
	// Startup is the seconds the service's new replicas took to become
	// ready, learned from the ticks that saw fewer ready replicas than
	// current ones (0 before any was seen); StartingSince is when the
	// ticks began to see them and StartingFrom the current count then
	// (zero while every replica is ready).
	Startup       float64   `json:"startup,omitempty"`
	StartingSince time.Time `json:"startingSince,omitempty"`
	StartingFrom  int32     `json:"startingFrom,omitempty"`
	// ReliefFrom and ReliefAnswered are the ready replicas and the
	// responses per second when the queue being worked off began;
	// ReliefReady is when the ticks first saw more replicas ready than
	// that. Unrelieved names the destination the wait moved into once
	// more ready replicas were seen to answer no more than these did
	// (the episode then ends as the own latency comes back).
	ReliefFrom     int32     `json:"reliefFrom,omitempty"`
	ReliefAnswered float64   `json:"reliefAnswered,omitempty"`
	ReliefReady    time.Time `json:"reliefReady,omitempty"`
	Unrelieved     string    `json:"unrelieved,omitempty"`
	// OutsidePeak is the most requests per second that arrived (the
	// calls held back by callers' queues included) over the ticks since
	// the time in an outside destination, or a queue here, began to grow;
	// 0 once neither has grown. While the outside destination stays slow
	// the service keeps what this peak needs at its measured capacity.
	OutsidePeak float64 `json:"outsidePeak,omitempty"`
}

// MeshVerdict is the part of the mesh's call graph that explains one
// decision, in a compact form: the service's own latency against its
// baseline, what it is made of, and what, if anything, grew.
type MeshVerdict struct {
	// Latency is the inbound mean in seconds, Own what is left of it after
	// the calls, Baseline the own latency's learned baseline.
	Latency  float64 `json:"latency"`
	Own      float64 `json:"own"`
	Baseline float64 `json:"baseline"`
	// Edge is the managed callee taking the largest share of the latency,
	// with its calls per request and their mean seconds; empty without
	// calls.
	Edge            string  `json:"edge,omitempty"`
	EdgeCalls       float64 `json:"edgeCalls,omitempty"`
	EdgeLatency     float64 `json:"edgeLatency,omitempty"`
	External        string  `json:"external,omitempty"`
	ExternalSeconds float64 `json:"externalSeconds,omitempty"`
	// Cause says what grew: CauseNone, or one of the causes below.
	Cause MeshCause `json:"cause,omitempty"`
}

// MeshCause names what made a service's latency grow.
type MeshCause string

// Causes. Only CauseQueueing is relieved by replicas.
const (
	CauseNone MeshCause = ""
	// CauseQueueing: the own latency grew with the load per replica, or
	// arrivals outran completions: requests queue for the replicas.
	CauseQueueing MeshCause = "queueing"
	// CauseSlowerWork: the own latency grew while the load per replica did
	// not: each request's own work got slower.
	CauseSlowerWork MeshCause = "slower own work"
	// CauseSingleInstance: a pinned service's own latency grew.
	CauseSingleInstance MeshCause = "single instance"
	// CauseOutside: the time in a destination elmascale does not scale
	// (a data store, a service outside the mesh or unmanaged) grew.
	CauseOutside MeshCause = "outside destination"
)

// Relievable reports whether replicas relieve the cause.
func (c MeshCause) Relievable() bool { return c == CauseQueueing }
