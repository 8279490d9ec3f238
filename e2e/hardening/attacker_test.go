package hardening

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// The login floods come from a process of their own, built from ./attacker (standard
// library only) without the race detector and run at the lowest CPU priority (nice 19): an
// attacker's own CPU is on another machine, so here it gets only what the services leave.
// Run in the test process (under -race in CI), 32 flooding goroutines took the CPU from the
// services and from the legitimate client's own measurements, and the figures measured the
// test, not the services.
var (
	attackerOnce sync.Once
	attackerBin  string
	attackerErr  error
)

// buildAttacker compiles ./attacker once per test process (without the race detector).
func buildAttacker(t *testing.T) string {
	t.Helper()
	attackerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kub-demo-attacker-")
		if err != nil {
			attackerErr = err
			return
		}
		var bins map[string]string
		bins, attackerErr = harness.BuildPackages(dir, harness.BuildOptions{}, "./e2e/hardening/attacker")
		attackerBin = bins["attacker"]
	})
	if attackerErr != nil {
		t.Fatalf("building the attacker: %v", attackerErr)
	}
	return attackerBin
}

// flood is a running attacker process.
type flood struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	latest map[string]int
	result *floodResult
	done   chan struct{}
	once   sync.Once
}

// floodResult is what the attacker reports when it stops: answers by status, the 503s'
// latencies (ms), and how many 429s came without Retry-After.
type floodResult struct {
	Answers           map[string]int
	Shed              int
	ShedP50, ShedP99  float64
	ShedMax           float64
	RetryAfterMissing int
}

func (r *floodResult) String() string {
	parts := []string{}
	for _, k := range slices.Sorted(maps.Keys(r.Answers)) {
		parts = append(parts, k+"="+strconv.Itoa(r.Answers[k]))
	}
	return strings.Join(parts, " ")
}

// startFlood runs the attacker at nice 19 against usersURL in mode "one" (32 clients on
// 127.0.0.1, three tries in four at the demo account, the others at made-up emails), "many" (a new address every 15 failures
// and a new email every try, so that no throttle bites) or "right" (the demo account's
// password, from two addresses); args are more flags (-workers 16 -password testers). It stops when stop is called, or
// after 30 s.
func startFlood(t *testing.T, usersURL, mode string, args ...string) *flood {
	t.Helper()
	bin := buildAttacker(t)
	f := &flood{latest: map[string]int{}, done: make(chan struct{})}
	f.cmd = exec.Command("nice", append([]string{"-n", "19", bin, "-url", usersURL, "-mode", mode, "-workers", "32", "-demo", harness.DemoEmail}, args...)...)
	var err error
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.once.Do(func() {
			f.cmd.Process.Kill()
			f.cmd.Wait()
		})
	})
	go func() {
		defer close(f.done)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			kind, payload, _ := strings.Cut(scanner.Text(), " ")
			f.mu.Lock()
			switch kind {
			case "progress":
				latest := map[string]int{}
				json.Unmarshal([]byte(payload), &latest)
				f.latest = latest
			case "result":
				var r floodResult
				if json.Unmarshal([]byte(payload), &r) == nil {
					f.result = &r
				}
			}
			f.mu.Unlock()
		}
	}()
	return f
}

// answers is the attacker's latest count of answers with status.
func (f *flood) answers(status string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latest[status]
}

// waitFor waits (at most timeout) until the attacker has had n answers with status.
func (f *flood) waitFor(status string, n int, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); f.answers(status) < n && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the flood and returns what the attacker saw.
func (f *flood) stop(t *testing.T) *floodResult {
	t.Helper()
	f.once.Do(func() {
		f.stdin.Close()
		select {
		case <-f.done:
		case <-time.After(15 * time.Second):
			f.cmd.Process.Kill()
			<-f.done
		}
		f.cmd.Wait()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.result == nil {
		t.Fatalf("the attacker reported no result")
	}
	return f.result
}
