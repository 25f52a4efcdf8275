//go:build !linux

package testcluster

import "syscall"

// sysProcAttr puts each child in its own process group. Without Linux's
// Pdeathsig a crashed test binary can leave children behind; Stop and Main
// still clean up on every orderly exit.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
