package daemon

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare of the container's memory limit is given to the Go
// runtime as its soft limit. The rest is the margin for what the runtime
// does not count: the binary's pages, thread stacks outside the heap, and
// the kernel's accounting of the pod.
const memoryLimitShare = 0.75

// setMemoryLimit gives the Go runtime a soft memory limit below the
// container's, so the garbage collector works harder near it instead of
// the kernel killing the pod; GOMEMLIMIT, when set, wins. It returns the
// limit set and the file it came from (0 and "" when none was found).
func setMemoryLimit(root string) (int64, string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, ""
	}
	limit, from := cgroupMemoryLimit(root)
	if limit <= 0 {
		return 0, ""
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft, from
}

// cgroupMemoryLimit reads this process's memory limit under the cgroup
// file system mounted at root (normally /sys/fs/cgroup): cgroup v2's
// memory.max, else v1's memory.limit_in_bytes, first in the process's own
// cgroup as /proc/self/cgroup names it, then at the root (a container sees
// its own cgroup there). "max", or v1's page-rounded 2^63, is no limit.
func cgroupMemoryLimit(root string) (int64, string) {
	v2, v1 := selfCgroups()
	var candidates []string
	if v2 != "" {
		candidates = append(candidates, filepath.Join(root, v2, "memory.max"))
	}
	candidates = append(candidates, filepath.Join(root, "memory.max"))
	if v1 != "" {
		candidates = append(candidates, filepath.Join(root, "memory", v1, "memory.limit_in_bytes"))
	}
	candidates = append(candidates, filepath.Join(root, "memory", "memory.limit_in_bytes"))
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, f
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0, f
		}
		return n, f
	}
	return 0, ""
}

// selfCgroups returns this process's cgroup v2 path and v1 memory
// controller path from /proc/self/cgroup.
func selfCgroups() (v2, v1 string) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case strings.Contains(","+parts[1]+",", ",memory,"):
			v1 = parts[2]
		}
	}
	return v2, v1
}
