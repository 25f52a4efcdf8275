// Command kube-controller-manager is the upstream controller manager, which
// turns Deployments into ReplicaSets and Pods for the integration tests.
package main
