package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// APIKey is the service credential every service gets unless its environment sets
// AUTH_API_KEY (auth requires it of users and tasks).
const APIKey = "the-harness-service-credential-0123456789abcdef"

// defaults are the settings a process gets when its environment does not set them: any free
// ports (read back from the "listening" log lines), no drain delay at stop, one credential.
var defaults = []string{"PORT=0", "METRICS_PORT=0", "SHUTDOWN_DELAY=0s", "AUTH_API_KEY=" + APIKey}

// Spec says what to run.
type Spec struct {
	// Name is used in messages; the binary's base name when empty.
	Name   string
	Binary string
	Args   []string
	// Env is the whole environment, plus defaults for what it does not set.
	Env []string
	// ReadyPath is polled once the process listens, until it answers 200: /healthz when
	// empty (the process is up), /readyz for a service that must reach auth first.
	ReadyPath string
	// Timeout bounds the wait for ReadyPath; 10 s when zero.
	Timeout time.Duration
	// LogLimit keeps only about the last LogLimit bytes of output (0: all of it): a service
	// under load logs a line per request.
	LogLimit int
}

// Process is one running program that logs {"msg":"listening","addr":…} as kub-demo's
// services do.
type Process struct {
	Name       string
	Port       int
	URL        string        // http://127.0.0.1:<port>
	MetricsURL string        // http://127.0.0.1:<METRICS_PORT>, when it logged one
	Ready      time.Duration // from exec to the first 200 on ReadyPath, in the last start

	spec   Spec
	cmd    *exec.Cmd
	logs   *logBuffer
	exited chan struct{}
	err    error
}

// WithDefaults returns env with each of the defaults it does not set added: the environment
// Launch gives a process, for tests that run a binary themselves.
func WithDefaults(env []string) []string {
	env = append([]string(nil), env...)
	for _, setting := range defaults {
		if name, _, _ := strings.Cut(setting, "="); !Has(env, name) {
			env = append(env, setting)
		}
	}
	return env
}

// Launch starts spec's program and waits until it listens and ReadyPath answers 200.
func Launch(spec Spec) (*Process, error) {
	if spec.Name == "" {
		spec.Name = filepath.Base(spec.Binary)
	}
	if spec.ReadyPath == "" {
		spec.ReadyPath = "/healthz"
	}
	if spec.Timeout == 0 {
		spec.Timeout = 10 * time.Second
	}
	spec.Env = WithDefaults(spec.Env)
	p := &Process{Name: spec.Name, spec: spec, logs: &logBuffer{limit: spec.LogLimit}}
	if err := p.start(); err != nil {
		return nil, err
	}
	// A later start listens on the same ports, so that whoever was told them finds it again.
	p.spec.Env = append(p.spec.Env, "PORT="+strconv.Itoa(p.Port))
	if p.MetricsURL != "" {
		p.spec.Env = append(p.spec.Env, "METRICS_PORT="+p.MetricsURL[strings.LastIndex(p.MetricsURL, ":")+1:])
	}
	return p, nil
}

func (p *Process) start() error {
	p.cmd = exec.Command(p.spec.Binary, p.spec.Args...)
	p.cmd.Env = p.spec.Env
	p.cmd.Dir = filepath.Dir(p.spec.Binary)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.exited = make(chan struct{})
	p.logs.restart()
	began := time.Now()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(began); err != nil {
		p.Kill()
		return fmt.Errorf("%w\nlogs:\n%s", err, p.Logs())
	}
	return nil
}

// waitReady waits for the "listening" line, then for a 200 on ReadyPath.
func (p *Process) waitReady(began time.Time) error {
	deadline := began.Add(p.spec.Timeout)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited before it was ready: %v", p.Name, p.err)
		}
		if p.URL == "" {
			addr, metrics := p.logs.addresses()
			if addr == "" {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			p.Port, _ = strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
			p.URL = "http://127.0.0.1:" + strconv.Itoa(p.Port)
			if metrics != "" {
				p.MetricsURL = "http://127.0.0.1" + metrics[strings.LastIndex(metrics, ":"):]
			}
		}
		if resp, err := client.Get(p.URL + p.spec.ReadyPath); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.Ready = time.Since(began)
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready (%s) within %s", p.Name, p.spec.ReadyPath, p.spec.Timeout)
}

// Start launches binary with env (see Spec and defaults) for the test, fails it if that does
// not work, and stops the process when the test ends.
func Start(t testing.TB, binary string, env []string) *Process {
	t.Helper()
	return StartSpec(t, Spec{Binary: binary, Env: env})
}

// StartCommand is Start for a command line that ends up running a service (e.g. through
// unshare), named name in messages.
func StartCommand(t testing.TB, name, binary string, args, env []string) *Process {
	t.Helper()
	return StartSpec(t, Spec{Name: name, Binary: binary, Args: args, Env: env})
}

// StartSpec is Start for any Spec.
func StartSpec(t testing.TB, spec Spec) *Process {
	t.Helper()
	p, err := Launch(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// Restart starts the process again, on the same ports, after it has exited.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if err := p.Relaunch(); err != nil {
		t.Fatal(err)
	}
}

// Relaunch starts the process again, on the same ports, after it has exited.
func (p *Process) Relaunch() error {
	if !p.Exited() {
		return fmt.Errorf("%s is still running", p.Name)
	}
	return p.start()
}

// PID is the process id of the current run.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the current run has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns how it exited.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Stop sends SIGTERM and waits (then SIGKILL after 15 s). It returns the exit error.
func (p *Process) Stop() error {
	if p == nil || p.cmd == nil {
		return nil
	}
	if p.Exited() {
		return p.err
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(15 * time.Second); err == nil || p.Exited() {
		return err
	}
	p.Kill()
	return fmt.Errorf("%s did not stop on SIGTERM within 15s", p.Name)
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// Logs is what the process wrote to stdout and stderr, over all its starts (the last
// LogLimit bytes of it, when the Spec set one).
func (p *Process) Logs() string { return p.logs.String() }

// logsQuiet is how long a service writes nothing before SettledLogs takes its logs as
// complete: services write their buffered log lines out at least every 50 ms.
const logsQuiet = 150 * time.Millisecond

// SettledLogs is Logs once the process has written nothing new for logsQuiet (so that lines
// still in its buffer are out), or after 5 s of waiting. Use it to check what a process
// logged after the requests that should have made it log.
func (p *Process) SettledLogs() string {
	deadline := time.Now().Add(5 * time.Second)
	last, since := p.logs.size(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
		if n := p.logs.size(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= logsQuiet {
			break
		}
	}
	return p.Logs()
}

// Memory reads the resident set size now (VmRSS) and its peak so far (VmHWM), in bytes.
func (p *Process) Memory() (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.PID()))
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
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", p.PID(), name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", p.PID())
	}
	return rss, peak, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux platform Go
// supports.
const clockTicks = 100

// CPUTime is the CPU time (user and system) the current run has used so far.
func (p *Process) CPUTime() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID()))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", p.PID(), stat)
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

// Has reports whether env sets name.
func Has(env []string, name string) bool {
	for _, setting := range env {
		if strings.HasPrefix(setting, name+"=") {
			return true
		}
	}
	return false
}

// logBuffer keeps a process's output (or its tail), and notes the addresses its "listening"
// and "metrics listening" lines name.
type logBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	written int64
	line    []byte // the end of output not yet ended by a newline, while addresses are sought
	addr    string
	metrics string
}

// restart forgets the addresses: a new run logs its own.
func (b *logBuffer) restart() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr, b.metrics, b.line = "", "", nil
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.written += int64(len(p))
	b.buf = append(b.buf, p...)
	// Trim only when twice over, so that keeping the tail costs O(1) per byte.
	if b.limit > 0 && len(b.buf) > 2*b.limit {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.limit:]...)
	}
	if b.addr == "" {
		b.line = append(b.line, p...)
		for {
			i := bytes.IndexByte(b.line, '\n')
			if i < 0 {
				break
			}
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(b.line[:i], &entry) == nil && entry.Addr != "" {
				switch entry.Msg {
				case "listening":
					b.addr = entry.Addr
				case "metrics listening":
					b.metrics = entry.Addr
				}
			}
			b.line = b.line[i+1:]
		}
	}
	return len(p), nil
}

// size is how many bytes were ever written (not only those kept).
func (b *logBuffer) size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.written
}

func (b *logBuffer) addresses() (addr, metrics string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr, b.metrics
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 && len(b.buf) > b.limit {
		return string(b.buf[len(b.buf)-b.limit:])
	}
	return string(b.buf)
}
