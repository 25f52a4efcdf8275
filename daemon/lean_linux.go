//go:build linux

package daemon

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout asks the kernel to reclaim a range's pages now (Linux 5.4);
// madvRandom turns read-ahead off for the range, so a page faulted back
// in does not bring its neighbours along.
const (
	madvRandom  = 1
	madvPageout = 21
)

// releaseStartupPages gives the kernel back the executable's read-only
// pages (code, constants, the function table) that are resident now.
// Start-up runs the init code of several hundred packages and the
// scheme registration of every Kubernetes API group once, and the kernel
// maps pages around each one it faults in: most of the binary ends up
// resident, though a tick runs a small part of it. Those pages are clean
// copies of the file, so the kernel can drop them at no cost; whatever a
// tick needs faults back in, one page at a time. The result
// is a resident set that is the daemon's working set, not its start-up's.
// It returns how many bytes it advised; an old kernel without
// MADV_PAGEOUT refuses, and nothing changes.
func releaseStartupPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var advised int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != exe || len(f[1]) < 4 || f[1][1] == 'w' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		for _, advice := range []uintptr{madvRandom, madvPageout} {
			if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), advice); errno != 0 {
				return advised, errno
			}
		}
		advised += int64(end - start)
	}
	return advised, sc.Err()
}
