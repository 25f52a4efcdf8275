// Package daemon runs the control loop: observe targets, collect signals,
// decide, apply and record, once per tick.
//
// Import rule: this root package is the loop's contract (Loop, Collector,
// Scaler, Recorder, TargetStatus, Outcome, Tick) and imports only policy and
// config. collector, scaler and simulations implement its interfaces and so
// import it; the in-cluster wiring that imports them (HTTP endpoints, leader
// election, config reload, choosing sources) lives in a subpackage or in
// cmd/elmascale, never here, or the imports would form a cycle.
package daemon
