// Package stack builds the three real service binaries and runs them as processes on
// loopback, for end-to-end tests. Packages that use it end their TestMain with
// os.Exit(stack.RunTests(m)), which removes the binaries afterwards.
package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
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

// Binaries are the paths of the built services.
type Binaries struct {
	Auth, Users, Tasks string
}

var (
	buildOnce sync.Once
	buildDir  string
	built     Binaries
	buildErr  error
)

// Build compiles the three services once per test process.
func Build(t testing.TB) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		var root string
		if root, buildErr = RepoRoot(); buildErr != nil {
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "kub-demo-bin-"); buildErr != nil {
			return
		}
		for _, svc := range []string{"auth", "users", "tasks"} {
			out := filepath.Join(buildDir, svc)
			cmd := exec.Command("go", "build", "-o", out, "./services/"+svc+"/cmd/"+svc)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if output, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", svc, err, output)
				return
			}
		}
		built = Binaries{
			Auth:  filepath.Join(buildDir, "auth"),
			Users: filepath.Join(buildDir, "users"),
			Tasks: filepath.Join(buildDir, "tasks"),
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// RunTests runs the package's tests and removes what Build made.
func RunTests(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// RepoRoot is the folder holding go.work.
func RepoRoot() (string, error) {
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
			return "", fmt.Errorf("no go.work above the working folder")
		}
		dir = parent
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// APIKey is the service credential Start gives every service that is not given one (auth
// requires it of users and tasks).
const APIKey = "the-e2e-service-credential-0123456789abcdef"

// Process is one running service.
type Process struct {
	Name       string
	Port       int
	URL        string // http://127.0.0.1:<port>
	MetricsURL string // http://127.0.0.1:<METRICS_PORT>

	binary string
	args   []string
	env    []string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	err    error
}

// Start runs binary with env, plus what env does not set of: PORT and METRICS_PORT 0 (any
// free port, read from its "listening" log lines), SHUTDOWN_DELAY 0s, and AUTH_API_KEY
// APIKey. It waits until /healthz answers, and stops the process when the test ends.
func Start(t testing.TB, binary string, env []string) *Process {
	t.Helper()
	return StartCommand(t, filepath.Base(binary), binary, nil, env)
}

// StartCommand is Start for a command line that ends up running a service (e.g. through
// unshare), named name in messages.
func StartCommand(t testing.TB, name, binary string, args, env []string) *Process {
	t.Helper()
	p := &Process{Name: name, binary: binary, args: args, logs: &syncBuffer{}}
	p.env = append([]string(nil), env...)
	for _, setting := range []string{"PORT=0", "METRICS_PORT=0", "SHUTDOWN_DELAY=0s", "AUTH_API_KEY=" + APIKey} {
		if name, _, _ := strings.Cut(setting, "="); !has(env, name) {
			p.env = append(p.env, setting)
		}
	}
	t.Cleanup(func() { p.Stop() })
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	if err := p.waitListening(10 * time.Second); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, p.Logs())
	}
	if err := p.WaitHealthy(10 * time.Second); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, p.Logs())
	}
	// A restart listens on the same ports, so that whoever was told them finds it again.
	p.env = append(p.env, "PORT="+strconv.Itoa(p.Port), "METRICS_PORT="+p.MetricsURL[strings.LastIndex(p.MetricsURL, ":")+1:])
	return p
}

// waitListening reads the ports of this run from its "listening" and "metrics listening"
// log lines (the addresses it bound).
func (p *Process) waitListening(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it listened: %v", p.Name, p.err)
		default:
		}
		port, metricsPort := 0, 0
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) != nil || entry.Addr == "" {
				continue
			}
			n, _ := strconv.Atoi(entry.Addr[strings.LastIndex(entry.Addr, ":")+1:])
			switch entry.Msg {
			case "listening":
				port = n
			case "metrics listening":
				metricsPort = n
			}
		}
		if port != 0 && metricsPort != 0 {
			p.Port = port
			p.URL = "http://127.0.0.1:" + strconv.Itoa(port)
			p.MetricsURL = "http://127.0.0.1:" + strconv.Itoa(metricsPort)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s logged no listening address within %s", p.Name, timeout)
}

func (p *Process) start() error {
	p.cmd = exec.Command(p.binary, p.args...)
	p.cmd.Env = p.env
	p.cmd.Dir = filepath.Dir(p.binary)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.exited = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// WaitHealthy polls /healthz until it answers 200, the process exits, or timeout passes.
func (p *Process) WaitHealthy(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was healthy: %v", p.Name, p.err)
		default:
		}
		if resp, err := client.Get(p.URL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy on %s after %s", p.Name, p.URL, timeout)
}

// PID is the process id of the current run.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit and returns how it exited.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Stop sends SIGTERM and waits (then SIGKILL after 15s). It returns the exit error.
func (p *Process) Stop() error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	select {
	case <-p.exited:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(15 * time.Second); err == nil || p.exitedNow() {
		return err
	}
	p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not stop on SIGTERM within 15s", p.Name)
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// Restart starts the same binary with the same environment again, after it has exited.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if !p.exitedNow() {
		t.Fatalf("%s is still running", p.Name)
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitHealthy(10 * time.Second); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, p.Logs())
	}
}

func (p *Process) exitedNow() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Logs is everything the process wrote to stdout and stderr, over all its starts.
func (p *Process) Logs() string { return p.logs.String() }

// has reports whether env sets name.
func has(env []string, name string) bool {
	for _, setting := range env {
		if strings.HasPrefix(setting, name+"=") {
			return true
		}
	}
	return false
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
