package service

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// currentGCPercent reads GOGC as the runtime has it.
func currentGCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestGCPercentKeepsTheHeapGoalAt16MB: a small live heap is collected at a goal of about
// 16 MB (within GOGC 400), a large one at GOGC=100 as Go does by default.
func TestGCPercentKeepsTheHeapGoalAt16MB(t *testing.T) {
	for live, want := range map[uint64]int{0: 400, 1 << 20: 400, 3200 << 10: 400, 4 << 20: 300, 5 << 20: 220, 8 << 20: 100, 24 << 20: 100, 1 << 40: 100} {
		if got := gcPercentFor(live); got != want {
			t.Errorf("live heap %d KiB: GOGC %d, want %d", live>>10, got, want)
		}
	}
}

// TestGCTunerFollowsTheLiveHeap: once tuned, collections of a small heap raise GOGC, and an
// operator's GOGC is left as it is.
func TestGCTunerFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(currentGCPercent())
	debug.SetGCPercent(100)
	tuneGC(func(name string) string { return map[string]string{"GOGC": "50"}[name] })
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if got := currentGCPercent(); got != 100 {
		t.Fatalf("with GOGC set, GOGC is %d after collections: the operator's setting must stay", got)
	}
	tuneGC(func(string) string { return "" })
	for deadline := time.Now().Add(5 * time.Second); currentGCPercent() == 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("GOGC still 100 after collections of a small heap")
		}
		runtime.GC()
	}
	if got, want := currentGCPercent(), gcPercentFor(liveHeap()); got < 200 || got > want+100 {
		t.Fatalf("GOGC %d for a live heap of %d KiB, want about %d", got, liveHeap()>>10, want)
	}
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
