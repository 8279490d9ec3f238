package service

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// minHeapGoal is the heap size the collector lets a service reach before it collects, when
// the live heap is small: GOGC is raised from 100 up to maxGCPercent so that the goal is
// about this much, and is 100 again once the live heap is over half of it.
//
// The services' live heap is a few MB. At GOGC=100 the collector then runs every few MB of
// allocation, many times a second per service under load, and each cycle's fixed cost (a
// worker woken on every P, stacks scanned) weighed more than its marking: GET /tasks spent
// measurably more CPU per request on it than the floor does (BENCHMARKS.md). A goal of 16 MB
// costs idle services nothing (an idle service allocates next to nothing) and a loaded one at
// most a few MB. A large live heap (a full task store) is collected at GOGC=100 as before, so
// the most memory a service takes is what it was, and GOMEMLIMIT still bounds it.
const (
	minHeapGoal  = 16 << 20
	maxGCPercent = 400
)

// tuneGC keeps the heap goal at minHeapGoal or more (see there), re-reading the live heap
// after every collection, unless GOGC is set: the operator's choice is kept.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	t := &gcTuner{percent: 100, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.afterNextGC()
}

type gcTuner struct {
	percent int
	live    []metrics.Sample
}

// gcSentinel is allocated to learn when a collection has run: it is unreachable at once, and
// its cleanup runs after the next collection. (It holds a pointer so that it is not one of
// the tiny objects the allocator packs together, whose cleanups may wait.)
type gcSentinel struct{ _ *byte }

func (t *gcTuner) afterNextGC() {
	runtime.AddCleanup(new(gcSentinel), func(t *gcTuner) {
		t.adjust()
		t.afterNextGC()
	}, t)
}

// adjust sets GOGC for the live heap the last collection found.
func (t *gcTuner) adjust() {
	metrics.Read(t.live)
	if t.live[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if percent := gcPercentFor(t.live[0].Value.Uint64()); percent != t.percent {
		debug.SetGCPercent(percent)
		t.percent = percent
	}
}

// gcPercentFor is the GOGC that makes the heap goal (live × (1 + GOGC/100)) minHeapGoal, within
// 100 and maxGCPercent.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	return int(min(max(minHeapGoal*100/live, 200), maxGCPercent+100)) - 100
}
