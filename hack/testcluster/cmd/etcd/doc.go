// Command etcd is the etcd server, built from its Go module so the tests do
// not depend on a downloaded release.
package main
