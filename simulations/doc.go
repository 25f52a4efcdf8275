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
// is a binary heap of 24-byte values, and latency histograms are fixed
// arrays indexed by the float's exponent bits. The 24-hour elma365-day
// scenario (about 17 million service visits) runs in a few seconds on one
// core; see BenchmarkElma365Day.
//
// Time advances in one-second steps. At each step the load sources draw
// Poisson arrival counts for the step from their (noisy) rate and schedule
// them at uniform times within it; events in the heap are then processed in
// time order. Observation is lagged like the real sources: Prometheus
// scrapes histograms and gauges every scrape interval and quantiles are
// taken over a rate window; metrics-server samples pod CPU every
// resolution period; the RabbitMQ management API refreshes queue statistics
// every few seconds with rates over a window; and the loop itself runs only
// every interval.
//
// # Determinism
//
// A run is a pure function of the scenario and the seed: all randomness
// comes from math/rand/v2 PCG streams derived from the seed (one for
// arrivals, one per service and queue for service times and call fan-out),
// the load noise is a hash of the seed and the time, and no wall clock is
// read. The arrival stream does not depend on the policy, so every policy
// faces the same load.
package simulations
