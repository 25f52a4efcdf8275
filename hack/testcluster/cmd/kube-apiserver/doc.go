// Command kube-apiserver is the upstream API server command, compiled here so
// integration tests can run a real control plane.
package main
