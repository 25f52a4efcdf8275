// Package incluster runs the control loop as the in-cluster daemon behind
// `elmascale run`: Kubernetes clients and the scaler, leader election,
// config hot reload, Prometheus metrics, health probes and the decisions
// API.
package incluster
