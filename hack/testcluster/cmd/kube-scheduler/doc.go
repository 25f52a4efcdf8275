// Command kube-scheduler is the upstream scheduler; the test cluster needs it
// because KWOK only fakes kubelets and never binds pods to nodes itself.
package main
