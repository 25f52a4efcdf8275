// Package daemon runs the control loop: observe targets, collect signals,
// decide, apply and record, once per tick.
package daemon
