package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildServices compiles the three services as make build does, into dir. tags, when not
// empty, is passed as -tags (benchpprof adds a pprof listener; see platform/httpserver).
func buildServices(root, dir, tags string) (map[string]string, error) {
	bins := make(map[string]string)
	for _, svc := range []string{"auth", "users", "tasks"} {
		out := filepath.Join(dir, svc)
		args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, "./services/"+svc+"/cmd/"+svc)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if output, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", svc, err, output)
		}
		bins[svc] = out
	}
	return bins, nil
}

// repoRoot is the folder holding go.work, above the working folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
		dir = parent
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is one running service (or floor server).
type process struct {
	name  string
	port  int
	url   string
	cmd   *exec.Cmd
	logs  *tailBuffer
	ready time.Duration // exec to the first 200 on /readyz
	done  chan struct{}
	err   error
}

// startProcess runs binary with env plus PORT, and waits (polling every millisecond, for at
// most timeout) for the first 200 on readyPath. The time from exec to that answer is ready.
func startProcess(name, binary string, args, env []string, readyPath string, timeout time.Duration) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &process{name: name, port: port, url: "http://127.0.0.1:" + strconv.Itoa(port), logs: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	// Metrics on any free port, no drain delay at stop, and one service credential for all.
	p.cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "METRICS_PORT=0", "SHUTDOWN_DELAY=0s",
		"AUTH_API_KEY=bench-service-credential-0123456789abcdef"}, env...), "PORT="+strconv.Itoa(port))
	// A pipe drained by this process, like a container runtime reading stdout: cheaper
	// targets such as /dev/null would hide what logging costs.
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	began := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	for deadline := began.Add(timeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before it was ready: %v\n%s", name, p.err, p.logs)
		default:
		}
		resp, err := client.Get(p.url + readyPath)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			p.ready = time.Since(began)
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready on %s within %s\n%s", name, p.url, timeout, p.logs)
}

// stop sends SIGTERM and waits up to 15 s, then kills.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// memory reads the resident set size now (VmRSS) and its peak so far (VmHWM), in bytes.
func (p *process) memory() (rss, peak int64, err error) {
	return readMemory(p.cmd.Process.Pid)
}

func readMemory(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return rss, peak, sc.Err()
}

// tailBuffer keeps (at least) the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	// Trim only when twice over, so that keeping the tail costs O(1) per byte: services log
	// a line per request, and copying the whole tail on each would load the machine the
	// services are measured on.
	if len(b.buf) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf[max(0, len(b.buf)-b.max):])
}

var _ io.Writer = (*tailBuffer)(nil)

// postJSON sends body to url and returns the answer's status and body.
func postJSON(url, body string, header http.Header) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	return do(req)
}

func get(url string, header http.Header) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(req)
}

func do(req *http.Request) (int, []byte, error) {
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}

// cpuTime is the CPU time (user and system) the process has used so far.
func (p *process) cpuTime() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", p.cmd.Process.Pid, stat)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux platform Go
// supports.
const clockTicks = 100

// cpuOf sums the CPU time of procs.
func cpuOf(procs []*process) time.Duration {
	var sum time.Duration
	for _, p := range procs {
		if d, err := p.cpuTime(); err == nil {
			sum += d
		}
	}
	return sum
}
