// Package record keeps what the loop did where people and tools can see it:
// the Prometheus metrics (names are a contract with the dashboard, see
// METRICS.md), the decision history behind /api/v1/decisions, liveness tied
// to loop progress, tick logs, and the one HTTP surface that serves them.
// The in-cluster daemon and the embedded demo record through the same code.
//
// Import rule: record reads loop.Tick and policy types; it never imports
// the daemon, the sources or the scaler.
package record
