package testcluster

import "syscall"

// sysProcAttr puts each child in its own process group and asks the kernel
// to kill it if the test binary dies without calling Stop (a panic, a
// `go test -timeout` kill), so no API server outlives its test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
