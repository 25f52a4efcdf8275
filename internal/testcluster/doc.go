// Package testcluster runs a real, throw-away Kubernetes control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK fake
// kubelets and optionally metrics-server) on 127.0.0.1 for integration tests.
//
// The binaries come from `make testcluster`, which compiles them from Go
// modules into <repo>/bin (or $ELMASCALE_TESTBIN). Nothing here downloads
// anything, and a missing binary is a test failure, never a skip: a test
// that silently skips would let the RBAC and scaling paths go unproven.
//
// Tests normally share one cluster per test binary:
//
//	func TestMain(m *testing.M) { testcluster.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := testcluster.ForTest(t)
//		client := kubernetes.NewForConfigOrDie(c.AdminConfig)
//		...
//	}
package testcluster
