// Package policy decides, from one snapshot of load signals, how many
// replicas each service needs and why; it is pure: no I/O, no clock.
package policy
