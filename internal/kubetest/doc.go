// Package kubetest holds helpers for the daemon's and scaler's integration
// tests against the real control plane of internal/testcluster: namespaces
// with the shipped RBAC bound to user elmascale, KWOK-ready Deployments,
// waits, Events and a minimal KEDA ScaledObject CRD.
package kubetest
