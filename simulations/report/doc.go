// Package report turns simulation results into Markdown score tables and
// PNG plots (load, latency, queue wait and replicas over time, one line per
// policy), for `elmascale simulate` and the BENCHMARKS.md it maintains.
package report
