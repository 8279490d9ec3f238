package service

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryLimit is the memory this process may use, in bytes, and where that figure comes from:
// GOMEMLIMIT (which deploy/k8s sets from the container's memory limit), else the cgroup's
// memory.max (a container with a limit but no GOMEMLIMIT), else the machine's memory.
func MemoryLimit() (bytes int64, source string) {
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit, "GOMEMLIMIT"
	}
	if limit, ok := cgroupMemoryMax(); ok {
		return limit, "cgroup memory.max"
	}
	if total, ok := memTotal(); ok {
		return total, "MemTotal"
	}
	return 1 << 30, "unknown (1 GiB assumed)"
}

// StoreCeiling is how many bytes a store that keeps its data in memory may grow to within
// memoryLimit: what is left after a reserve for the process itself (runtime, buffers,
// connections: an idle service takes about 12 MB), halved, so that the garbage collector has
// room and the store can always be loaded again at start in the same memory.
func StoreCeiling(memoryLimit int64) int64 {
	const reserve = 16 << 20
	return max((memoryLimit-reserve)/2, 1<<20)
}

func cgroupMemoryMax() (int64, bool) {
	raw, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64) // "max" when there is none
	return n, err == nil && n > 0
}

func memTotal() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err == nil && kb > 0
		}
	}
	return 0, false
}
