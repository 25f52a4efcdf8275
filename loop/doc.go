// Package loop is the control loop's contract and its one tick: observe the
// scale targets, collect signals, decide (policy.Decide), apply, record.
// The in-cluster daemon, `elmascale recommend`, the embedded demo and the
// simulator all run this same tick; they differ only in the Collector,
// Scaler and Recorder they plug in and in what drives the ticks.
//
// Import rule: loop imports policy and config only. Sources (collector),
// the scaler, the simulator and the recorders implement its interfaces and
// import it, never the other way round.
package loop
