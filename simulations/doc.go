// Package simulations scores elmascale against HPA-style, KEDA-style and
// static baselines and an offline oracle on a simulated ELMA365 cluster: a
// deterministic discrete-event model that implements daemon.Collector and
// daemon.Scaler, so the real control loop and policy run unchanged in
// virtual time.
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
// requests live in a preallocated slice with a free list, the event queue
// is a 4-ary heap of 16-byte values, external arrivals are generated in
// time order beside the heap rather than in it, and latency histograms are
// fixed arrays indexed by the float's exponent bits. The 24-hour
// elma365-day scenario (about 25 million events) takes about 4 seconds of
// CPU on one core; see BenchmarkElma365Day.
//
// Time advances in one-second steps. Within a step every load source has a
// fixed rate (its profile and noise at the middle of the step); together
// they are one Poisson process whose arrivals are drawn one after another
// and merged with the heap's events in time order. Observation is lagged
// like the real sources: Prometheus scrapes histograms and gauges every
// scrape interval and quantiles are taken over a rate window;
// metrics-server samples pod CPU every resolution period; the RabbitMQ
// management statistics refresh every few seconds with rates over a
// window; and the loop itself runs only every interval.
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
