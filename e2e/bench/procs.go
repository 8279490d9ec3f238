package main

import (
	"os"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// process is one running service or floor server.
type process = harness.Process

// launch runs binary with env (and this process's PATH) until /readyz answers 200, keeping
// the last 64 KiB of its output: the services log a line per request, which a pipe drained
// here takes, as a container runtime would (cheaper targets such as /dev/null would hide what
// logging costs).
func launch(name, binary string, args, env []string, timeout time.Duration) (*process, error) {
	return harness.Launch(harness.Spec{
		Name: name, Binary: binary, Args: args, Env: append([]string{"PATH=" + os.Getenv("PATH")}, env...),
		ReadyPath: "/readyz", Timeout: timeout, LogLimit: 64 << 10,
	})
}

// cpuOf sums the CPU time of procs.
func cpuOf(procs []*process) time.Duration {
	var sum time.Duration
	for _, p := range procs {
		if d, err := p.CPUTime(); err == nil {
			sum += d
		}
	}
	return sum
}
