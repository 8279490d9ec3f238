package hardening

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// figure logs one measured figure in the form the closing notes grep for:
// "FIGURE <name>: <what>".
func figure(t *testing.T, name, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s: %s", name, fmt.Sprintf(format, args...))
}

// memory is what /proc/<pid>/status says of a process's resident memory, in bytes: now
// (VmRSS) and at its highest since it started (VmHWM).
type memory struct{ rss, peak int64 }

func (m memory) String() string { return fmt.Sprintf("RSS %s (peak %s)", mib(m.rss), mib(m.peak)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func memoryOf(t *testing.T, p *harness.Process) memory {
	t.Helper()
	rss, peak, err := p.Memory()
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return memory{rss: rss, peak: peak}
}

// sampleMemory reads p's memory every 25 ms until stop is called, which returns the highest
// resident size seen and the process's own peak (VmHWM).
func sampleMemory(t *testing.T, p *harness.Process) (stop func() memory) {
	t.Helper()
	done, result := make(chan struct{}), make(chan memory)
	go func() {
		var highest memory
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := p.Memory(); err == nil {
				highest.rss = max(highest.rss, rss)
			}
			select {
			case <-done:
				result <- highest
				return
			case <-tick.C:
			}
		}
	}()
	return func() memory {
		close(done)
		m := <-result
		m.peak = memoryOf(t, p).peak
		return m
	}
}

// do sends one request with client and returns the status and decoded JSON body; err is set
// when there was no answer, or the body was not a JSON object with a message (when not 2xx).
func do(client *http.Client, method, url, token, body string) (status int, answer map[string]any, header http.Header, err error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, resp.Header, err
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return resp.StatusCode, nil, resp.Header, fmt.Errorf("%d with a body that is not a JSON object: %.200q", resp.StatusCode, raw)
	}
	if resp.StatusCode >= 300 {
		if m, _ := answer["message"].(string); m == "" {
			return resp.StatusCode, answer, resp.Header, fmt.Errorf("%d without a message: %.200q", resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, answer, resp.Header, nil
}

// timed runs fn n times, one after another, and returns each run's duration.
func timed(n int, fn func(i int)) []time.Duration {
	took := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		fn(i)
		took[i] = time.Since(start)
	}
	return took
}

// percentile is the p-th percentile (0–100) of ds, by the nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// rawExchange dials addr, writes request and reads one answer: its status line and body.
func rawExchange(t *testing.T, addr, request string) (status string, body []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The server may answer (431) and close before it has read all of a huge request: write
	// in the background and read the answer.
	go io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a %d-byte request: %v", len(request), err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	return resp.Status, body
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

// errorLines are the log lines of p at level ERROR.
func errorLines(p *harness.Process) []string {
	var lines []string
	for _, line := range strings.Split(p.SettledLogs(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			lines = append(lines, line)
		}
	}
	return lines
}

// longestLogLine is the length of p's longest log line.
func longestLogLine(p *harness.Process) int {
	longest := 0
	for _, line := range strings.Split(p.SettledLogs(), "\n") {
		longest = max(longest, len(line))
	}
	return longest
}

// runToExit runs binary with env (and the settings harness.Start adds) and waits at most
// timeout for it to exit, as a service refusing to start should. It returns what it wrote,
// how long it ran and how it exited; a process still running after timeout is killed and
// fails the test.
func runToExit(t *testing.T, binary string, env []string, timeout time.Duration) (output string, took time.Duration, exitErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary)
	cmd.Env = harness.WithDefaults(env)
	cmd.Dir = filepath.Dir(binary)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%s still running after %s (killed): it should have refused to start\n%s", filepath.Base(binary), timeout, out)
	}
	return string(out), took, err
}

// loginFrom logs in as email from client and returns the token, or the status it got.
func loginFrom(client *http.Client, usersURL, email, password string) (token string, status int, header http.Header, err error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	status, answer, header, err := do(client, "POST", usersURL+"/login", "", string(body))
	token, _ = answer["token"].(string)
	return token, status, header, err
}

// counter counts outcomes by name, safely from many goroutines.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	for k := range c.n {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c.n[k])
	}
	return strings.Join(parts, " ")
}

// readAll reads and closes resp's body.
func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

func mustJSON(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// startSystemWith is startSystem with settings of each service's own (later ones win).
func startSystemWith(t *testing.T, authEnv, usersEnv, tasksEnv []string) system {
	t.Helper()
	bin := harness.Build(t)
	data := t.TempDir()
	s := system{tasksFolder: filepath.Join(data, "tasks"), usersFolder: filepath.Join(data, "users")}
	s.auth = harness.Start(t, bin.Auth, append([]string{"JWT_SECRET=" + jwtSecret, "TOKEN_ISSUER=" + tokenIssuer, "BCRYPT_COST=4"}, authEnv...))
	authAddress := "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port)
	s.users = harness.Start(t, bin.Users, append([]string{authAddress, "USERS_FOLDER=" + s.usersFolder}, usersEnv...))
	s.tasks = harness.Start(t, bin.Tasks, append([]string{authAddress, "TASKS_FOLDER=" + s.tasksFolder}, tasksEnv...))
	return s
}

// waitReady polls p's /readyz until it answers 200, failing the test after timeout.
func waitReady(t *testing.T, p *harness.Process, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, 20*time.Millisecond, func() error {
		return harness.Expect("GET", p.URL+"/readyz", "", nil, http.StatusOK)
	})
}
