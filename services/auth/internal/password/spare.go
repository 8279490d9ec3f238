package password

import (
	"runtime"
	"sync"
	"time"
)

// spareP gives the Go runtime one P more than bcrypt's workers while any of them hashes, and
// takes it back once none has hashed for spareLinger.
//
// With every worker hashing and no spare P, a token check that comes in waits for the
// scheduler to preempt a bcrypt run, 10 ms at a time; the spare P runs it at once, and the
// kernel shares the CPUs between the threads. Kept all the time, though, the spare P costs
// every request: an idle P makes the runtime wake and spin more threads, which measured 3 %
// of GET /tasks' throughput when no password was being hashed at all (BENCHMARKS.md).
// Changing GOMAXPROCS stops the world for some microseconds, so it is raised once for a burst
// of logins and lowered only after the burst.
type spareP struct {
	base int // GOMAXPROCS without the spare P

	mu      sync.Mutex
	hashing int  // workers hashing now
	raised  bool // GOMAXPROCS is base+1
	lower   *time.Timer
}

// spareLinger is how long the spare P stays after the last hash: logins come in bursts.
const spareLinger = time.Second

// begin is called as a worker starts hashing.
func (s *spareP) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hashing++
	if !s.raised {
		runtime.GOMAXPROCS(s.base + 1)
		s.raised = true
	}
}

// end is called as a worker is done hashing.
func (s *spareP) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hashing--
	if s.hashing > 0 {
		return
	}
	if s.lower == nil {
		s.lower = time.AfterFunc(spareLinger, s.lowerIfIdle)
	} else {
		s.lower.Reset(spareLinger)
	}
}

// lowerIfIdle takes the spare P back unless a worker hashes again.
func (s *spareP) lowerIfIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hashing == 0 && s.raised {
		runtime.GOMAXPROCS(s.base)
		s.raised = false
	}
}
