package hardening

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The login floods come from a process of their own, built from attackerSource (standard
// library only) without the race detector and run at the lowest CPU priority (nice 19): an
// attacker's own CPU is on another machine, so here it gets only what the services leave.
// Run in the test process (under -race in CI), 32 flooding goroutines took the CPU from the
// services and from the legitimate client's own measurements, and the figures measured the
// test, not the services.
const attackerSource = `package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func client(local string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 4}}
}

func main() {
	url := flag.String("url", "", "users base URL")
	workers := flag.Int("workers", 32, "flooding clients")
	mode := flag.String("mode", "one", "one: every client on 127.0.0.1, three tries in four at -demo; many: a new 127.1.x.y address every 15 failures, a new email every try")
	demo := flag.String("demo", "", "the demo user's email")
	longest := flag.Duration("max", 30*time.Second, "stop after this long even if stdin stays open")
	flag.Parse()

	var mu sync.Mutex
	answers := map[string]int{}
	var shed []time.Duration
	retryAfterMissing := 0
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }() // the test closes stdin to stop the flood
	go func() { time.Sleep(*longest); os.Exit(3) }()
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			raw, _ := json.Marshal(answers)
			mu.Unlock()
			fmt.Printf("progress %s\n", raw)
		}
	}()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *http.Client
			addr, failures := "", 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				next, email := "127.0.0.1", fmt.Sprintf("nobody-%d-%d-%d@example.com", w, i, rand.Int64())
				if *mode == "many" {
					next = fmt.Sprintf("127.1.%d.%d", w+1, failures/15+1)
				} else if i%4 != 3 {
					email = *demo
				}
				if next != addr {
					if c != nil {
						c.CloseIdleConnections()
					}
					addr, c = next, client(next)
				}
				body := fmt.Sprintf("{\"email\":%q,\"password\":\"not-the-password\"}", email)
				start := time.Now()
				resp, err := c.Post(*url+"/login", "application/json", strings.NewReader(body))
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					answers["error"]++
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers[fmt.Sprint(resp.StatusCode)]++
				switch resp.StatusCode {
				case 401:
					failures++
				case 429:
					if resp.Header.Get("Retry-After") == "" {
						retryAfterMissing++
					}
				case 503:
					shed = append(shed, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(shed)
	at := func(p float64) float64 {
		if len(shed) == 0 {
			return 0
		}
		i := min(max(int(float64(len(shed))*p/100+0.5)-1, 0), len(shed)-1)
		return float64(shed[i].Microseconds()) / 1000
	}
	raw, _ := json.Marshal(map[string]any{"answers": answers, "shed": len(shed), "shedP50": at(50), "shedP99": at(99), "shedMax": at(100), "retryAfterMissing": retryAfterMissing})
	fmt.Printf("result %s\n", raw)
}
`

var (
	attackerOnce sync.Once
	attackerBin  string
	attackerErr  error
)

// buildAttacker compiles attackerSource once per test process.
func buildAttacker(t *testing.T) string {
	t.Helper()
	attackerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kub-demo-attacker-")
		if err != nil {
			attackerErr = err
			return
		}
		src := filepath.Join(dir, "main.go")
		if attackerErr = os.WriteFile(src, []byte(attackerSource), 0o644); attackerErr != nil {
			return
		}
		attackerBin = filepath.Join(dir, "attacker")
		cmd := exec.Command("go", "build", "-o", attackerBin, src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			attackerErr = err
			t.Logf("go build of the attacker: %s", out)
		}
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
// 127.0.0.1, three tries in four at the demo account, the others at made-up emails) or "many" (a new address every 15 failures
// and a new email every try, so that no throttle bites). It stops when stop is called, or
// after 30 s.
func startFlood(t *testing.T, usersURL, mode string) *flood {
	t.Helper()
	bin := buildAttacker(t)
	f := &flood{latest: map[string]int{}, done: make(chan struct{})}
	f.cmd = exec.Command("nice", "-n", "19", bin, "-url", usersURL, "-mode", mode, "-workers", "32", "-demo", "test@gmail.com")
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
