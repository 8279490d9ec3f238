package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestAgainstTheRealServices builds auth, users, tasks and this command, runs the three
// services on loopback as make run wires them, and runs the built command against them:
// once with everything up, once with auth stopped.
func TestAgainstTheRealServices(t *testing.T) {
	root := repoRoot(t)
	bin := t.TempDir()
	for _, pkg := range []string{"./services/auth/cmd/auth", "./services/users/cmd/users", "./services/tasks/cmd/tasks", "./cmd/smoke"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, filepath.Base(pkg)), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	data := t.TempDir()
	auth := startService(t, filepath.Join(bin, "auth"), "JWT_SECRET=smoke-test-signing-key-0123456789abcdef")
	users := startService(t, filepath.Join(bin, "users"), "AUTH_ADDRESS="+auth.addr, "USERS_FOLDER="+filepath.Join(data, "users"))
	tasks := startService(t, filepath.Join(bin, "tasks"), "AUTH_ADDRESS="+auth.addr, "TASKS_FOLDER="+filepath.Join(data, "tasks"))

	smoke := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "smoke"), append([]string{"--users", users.url, "--tasks", tasks.url}, args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run smoke: %v", err)
		}
		t.Logf("smoke %s → %d\n%s", strings.Join(args, " "), cmd.ProcessState.ExitCode(), out)
		return cmd.ProcessState.ExitCode(), string(out)
	}

	code, out := smoke("--request-id", "svc-test")
	if code != exitPass {
		t.Fatalf("exit %d against the running services, want 0", code)
	}
	if got, want := verdicts(out), map[string]string{"login": "PASS", "create-task": "PASS", "find-task": "PASS", "no-token": "PASS"}; !maps(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	if !strings.Contains(out, "smoke: PASS, 4 of 4 steps passed") {
		t.Errorf("no PASS summary")
	}
	// The task is in the real tasks.txt, in the original's format.
	file, err := os.ReadFile(filepath.Join(data, "tasks", "tasks.txt"))
	if err != nil || !bytes.Contains(file, []byte(`{"title":"smoke `)) || !bytes.HasSuffix(file, []byte("TASK_SPLIT")) {
		t.Errorf("tasks.txt: %v %q, want the smoke task followed by TASK_SPLIT", err, file)
	}
	// The services echo the id; what the command prints is what the logs carry.
	for _, step := range []string{"login", "create-task", "find-task", "no-token"} {
		if !strings.Contains(out, "request-id=svc-test-"+step+"\n") {
			t.Errorf("step %s: the line does not end with request-id=svc-test-%s", step, step)
		}
	}
	if !strings.Contains(users.logs.String(), `"svc-test-login"`) || !strings.Contains(tasks.logs.String(), `"svc-test-create-task"`) {
		t.Errorf("the request ids printed are not in the services' logs")
	}

	// auth down: login answers 503, the token steps are skipped, and tasks still refuses a
	// request without a token, which needs no call to auth.
	auth.stop(t)
	code, out = smoke()
	if code != exitFail {
		t.Errorf("exit %d with auth stopped, want 1", code)
	}
	if got, want := verdicts(out), map[string]string{"login": "FAIL", "create-task": "SKIP", "find-task": "SKIP", "no-token": "PASS"}; !maps(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	if !strings.Contains(out, "POST /login as test@gmail.com: got 503 ") || !strings.Contains(out, "smoke: FAIL, 1 passed, 1 failed (login), 2 skipped") {
		t.Errorf("output does not say that login got 503 and failed")
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working folder: run the tests from inside the repository")
		}
		dir = parent
	}
}

type service struct {
	cmd       *exec.Cmd
	addr, url string
	logs      *lockedBuffer
	exited    chan struct{}
	stopOnce  sync.Once
}

// startService runs binary on a free loopback port with exactly env and waits for /healthz.
func startService(t *testing.T, binary string, env ...string) *service {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &service{
		addr:   fmt.Sprintf("127.0.0.1:%d", port),
		url:    fmt.Sprintf("http://127.0.0.1:%d", port),
		logs:   &lockedBuffer{},
		exited: make(chan struct{}),
	}
	s.cmd = exec.Command(binary)
	s.cmd.Env = append(append([]string{"METRICS_PORT=0", "SHUTDOWN_DELAY=0s", "AUTH_API_KEY=smoke-test-service-credential-0123456789"}, env...), fmt.Sprintf("PORT=%d", port))
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("logs of %s:\n%s", filepath.Base(binary), s.logs.String())
		}
	})
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-s.exited:
			t.Fatalf("%s exited at start:\n%s", binary, s.logs.String())
		default:
		}
		if res, err := client.Get(s.url + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
	}
	t.Fatalf("%s not healthy after 10s:\n%s", binary, s.logs.String())
	return nil
}

// stop sends SIGTERM and waits up to 15s, then kills.
func (s *service) stop(t *testing.T) {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("%s did not stop within 15s of SIGTERM", s.cmd.Path)
		}
	})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
