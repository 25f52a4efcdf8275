// Package kubeit proves the collector's metrics.k8s.io source against a
// real control plane (kube-apiserver, KWOK, metrics-server); it has tests
// only, apart because that cluster needs its own TestMain.
package kubeit
