// Package daemon is the in-cluster process behind `elmascale run`:
// daemon.Run wires the Kubernetes clients, the scaler and the given
// collector into one loop.Loop, runs Lease-based leader election (every
// replica decides, only the leader writes), reloads the config file when it
// changes (keeping the last good one), serves metrics, the decisions API and
// probes through record, and shuts down in order.
package daemon
