// Package simulations scores elmascale against HPA-style, KEDA-style and
// static baselines and a reference schedule (Oracle) on a simulated ELMA365
// cluster: a deterministic discrete-event model that implements
// loop.Collector and loop.Scaler, so the real control loop and policy run
// unchanged in virtual time.
//
// # Scores
//
// Every run is scored on SLO violation seconds (10 s windows in which a
// p95 latency or queue wait SLO was broken) and replica-seconds, and on
// two figures that cannot hide waste or blame: elastic replica-seconds,
// those above every service's floor (its minReplicas, pinned at one),
// which no policy controls; and relievable violation seconds, those in
// windows in which the run missed an SLO the reference met in the same
// window (ScoreRelievable). The goal is stated on these two
// (simulations/report). The late reference (PolicyLateReference,
// Oracle.Late) is the reference's counts, each rise as late as a policy
// that reacts must have it: beside the reference, it tells which of a
// policy's relievable seconds only foresight avoids.
//
// # What is simulated, and at what grain
//
// Everything is request-level. Each synchronous request is an object that
// arrives at a service, waits for a free slot on one of its ready pods, does
// its own work (a drawn service time that also burns CPU), then calls its
// dependencies one after another and only answers its caller when the last
// of them has answered. A slow dependency therefore shows up as latency, and
// as requests in flight, upstream, exactly as in the real cluster. Worker
// pools consume RabbitMQ-like queues message by message on the same slots
// their synchronous calls use (synchronous calls first).
//
// We chose request-level over a fluid model for every service, not only the
// worker queue, because the signals the policy reads (histogram quantiles,
// in-flight gauges, per-pod CPU) and the effects it must tell apart
// (a dependency's latency against a service's own saturation) come out of
// the request mechanics directly and need no queueing formula inside the
// simulator. The cost is bounded by keeping the hot path allocation free:
// requests live in a preallocated slice with a free list; the event queue
// is a timing wheel of 1/1024 s buckets over the next 4 s, with a 4-ary
// heap for the few events due later; external arrivals are generated in
// time order beside the queue rather than in it; latency histograms are
// fixed arrays indexed by the float's exponent bits; and lognormal service
// times come from a quantile table rather than an exp per draw. The 24-hour
// elma365-day scenario (about 25 million events) takes about 2.7 CPU
// seconds on one core, a working week under the preset
// (testdata/elma365-week.yaml, about 137 million events) about 17; see
// BenchmarkElma365Day and BenchmarkElma365Week, which report CPU seconds
// beside wall seconds (on a shared machine the wall time is the larger,
// by whatever the machine's load adds) and docs/benchmarks/analysis.md
// for where the time goes.
//
// # Mechanics beyond plain serving, and where they are in the format
//
// Each is exercised by a shipped scenario and, where a law applies, a
// property test (mechanics_test.go).
//
//   - Slots held during calls (services.X.concurrency: sync): a thread per
//     request or a connection pool. The slot is kept until the last call
//     has answered, so a pod never has more calls outstanding downstream
//     than it has slots, and a slow dependency exhausts the pool and
//     queues requests upstream (TestPropertySyncPoolCapsDownstreamAndQueuesUpstream;
//     pool-exhaustion). The default, async, frees the slot when the own
//     work ends (an event loop).
//   - I/O-bound services: a service time far above its cpuPerRequest
//     spends its time waiting, so its CPU stays low while its slots run
//     out (collector in pool-exhaustion).
//   - Phases (services.X.phases, stores.X.phases: from, to, factor): own
//     work started within a phase takes factor times as long: a storage
//     backend that gets slow at 10:00 (TestPhaseSlowsServiceTime).
//   - Data stores (cluster.stores: kind postgresql, mongodb, redis, minio
//     or rabbitmq; connections; serviceTime; phases): called like services
//     but never scaled by anything (the simulated scaler refuses); the
//     scores list the seconds each spent saturated (Scores.Saturated),
//     which no replica count relieves (TestDataStoreSaturatesAndIsNotScaled).
//   - Scripts that work (queues.Q.calls, queues.Q.publishes): a message
//     does its own work, then makes synchronous calls (a script calling
//     main and collector) and publishes further messages; it is
//     acknowledged when its last call has answered, holding its
//     consumer's slot meanwhile if the consumer is sync
//     (TestPropertyScriptsCallAndPublish; script-pools).
//   - Worker pools from a template (cluster.pools: template, names or
//     count): each pool N of template T becomes service T-N consuming its
//     own queue T.N, copies of T's and of the queue T consumes, and, when
//     the elmascale configuration has an entry for T, a copy of it reading
//     T.N instead of T's queue (TestPoolTemplate).
//   - Nodes (cluster.nodes: count, maxCount, cpu, memory, addDelay): pods
//     are placed first fit by their cpuRequest and memoryRequest; a pod
//     that fits nowhere stays Pending (the policy sees it Pending); a
//     cluster autoscaler orders the nodes the Pending pods need, up to
//     maxCount, each ready addDelay later; nodes are never removed
//     (TestNodesFullLeavePodsPending; node-pressure).
//   - CPU limits (services.X.cpuLimit): own work that would make the pod
//     burn CPU faster than its limit is stretched by demand/limit, the
//     demand taken when the work starts; metrics-server then reads the pod
//     at about its limit (TestCPULimitThrottles).
//   - Caller timeouts and retries (calls[].timeout, retries): the caller
//     gives up an attempt after timeout, the callee still does the work
//     (it does not see the caller go), and the call is retried with a new
//     request, or fails after the last attempt: the caller goes on and
//     its request counts as failed (Scores.FailedRequests). When the
//     callee is slower than the timeout every call becomes 1+retries
//     requests (TestPropertyRetriesMultiplyLoad; retry-storm).
//   - Bursts drawn per seed (load[].bursts: every, factor {mean, cv},
//     duration): Poisson arrivals of bursts that multiply the source's
//     rate, each seed drawing its own and every policy of a seed facing
//     the same (TestBurstsDrawnPerSeed; script-pools).
//   - Correlated noise (load[].noise.group, correlation): sources of one
//     group share part of their noise (TestNoiseCorrelation).
//
// Not modelled: memory use (only requests, for fitting), node failures,
// client-side cancellation reaching the callee, connection set-up, and
// network time between services.
//
// Time advances in one-second steps. Within a step every load source has a
// fixed rate (its profile and noise at the middle of the step); together
// they are one Poisson process whose arrivals are drawn one after another
// and merged with the queued events in time order. Observation is lagged
// like the real sources: Prometheus scrapes histograms and gauges every
// scrape interval and quantiles are taken over a rate window;
// metrics-server samples pod CPU every resolution period; the RabbitMQ
// management statistics refresh every few seconds with rates over a
// window; and the loop itself runs only every interval.
//
// # Linkerd-shaped observations
//
// Besides the ELMA365 preset's metric names, the bindings answer the
// Linkerd proxy's series by deployment: linkerd_response_latency_p95 (the
// inbound response_latency_ms histogram's p95, in seconds),
// linkerd_request_rate (inbound request_total) and linkerd_failure_rate
// (inbound response_total classified failure: a call ran out of
// attempts, or the caller abandoned the request at its timeout;
// TestPropertyLinkerdFailureRate), and, for an edge, a
// binding of series edgeRate with from: CALLER gives the requests per
// second CALLER's proxy sends each callee (outbound request_total by
// dst_deployment, every retried attempt counted). A callee with one
// caller and no outside load receives exactly what its caller's proxy
// counts (TestPropertyLinkerdEdgeRate). A binding is a SeriesKind over
// the simulated Prometheus scrapes, with a quantile and a rate window,
// keyed by the label value the configuration's signal gives (a service,
// a queue, or for edgeRate the dst_deployment).
//
// The mesh block (mesh: {linkerd: {}}) is answered the way a cluster's
// Linkerd source answers it: every scrape also keeps each workload's
// inbound latency sum and count and its responses classified success,
// and, at the caller, each edge's responses, successes and latency sum
// (an answer counted when it reaches a caller still waiting, an abandoned
// attempt as a failure taking its timeout); Cluster.CollectMesh takes
// their rates over the mesh's window and builds the observation with
// policy.NewMeshObservation, the constructor the cluster's source uses. A
// data store has no proxy: a call to it is an edge to a destination
// outside the mesh (External), and it has no inbound entry. Calls that a
// worker's scripts make count on the worker's edges while its inbound
// requests are only its synchronous ones, as with Linkerd: the calls then
// outweigh the requests and its own latency comes out at zero, so the
// mesh names no cause there (its queue signal sizes it). Not offered:
// per-edge latency histograms (the edges carry means).
//
// # What-if on a recorded load
//
// Capture (elmascale simulate --from-prometheus URL --range 7d) reads a
// recorded range from a cluster's Prometheus and writes a scenario that
// replays it: the template scenario's cluster, SLOs and elmascale
// configuration, resolved into one self-contained file, with each of the
// template's load sources replaced by the recorded rate of its service
// (by default the Linkerd ingress controller's outbound requests, by
// dst_deployment) or queue (RabbitMQ's publish rate) as a points profile
// at the capture's step. Arrivals are still drawn per seed around the
// recorded rate; a source without a record is refused by name. The
// record is only as good as its queries: a service's inbound rate
// includes what other services send it, so only requests from outside
// the cluster may be given to an entry service
// (TestCaptureFromPrometheus, against a real Prometheus holding a
// backfilled week).
//
// # Determinism and common random numbers
//
// A run is a pure function of the scenario and the seed: the arrival
// stream comes from a math/rand/v2 PCG seeded from the seed, the load
// noise is a hash of the seed and the time, and no wall clock is read
// (RunAccelerated, for the demo, only paces itself by it). Every request
// carries a key derived from the seed and its place in the call tree, and
// its service time, its calls and its publishes are drawn from that key
// alone, so every policy serves exactly the same requests: differences
// between policies are differences in scaling, not in luck.
package simulations
