package hardening

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStdoutNotReadDoesNotHangRequests: tasks writes its log to a pipe nobody reads (a
// stuck log agent). Every one of 1,000 GET /tasks is answered 200 (before, they hung after
// about 250, while /healthz and /readyz, which log nothing, stayed 200).
func TestStdoutNotReadDoesNotHangRequests(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	reader, writer, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close() // never read
	port := freePort(t)
	bin := harness.Build(t)
	cmd := exec.Command(bin.Tasks)
	cmd.Env = harness.WithDefaults([]string{"PORT=" + strconv.Itoa(port), "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port),
		"TASKS_FOLDER=" + filepath.Join(t.TempDir(), "tasks")})
	cmd.Stdout, cmd.Stderr = writer, writer
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	writer.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	harness.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		return harness.Expect("GET", url+"/readyz", "", nil, http.StatusOK)
	})
	client := &http.Client{Timeout: 5 * time.Second}
	var answers counter
	start := time.Now()
	for range 1000 {
		status, _, _, err := do(client, "GET", url+"/tasks", token, "")
		answers.add(fmt.Sprintf("%d %v", status, err))
		if err != nil {
			break
		}
	}
	figure(t, "stdout-not-read", "1,000 GET /tasks with tasks' stdout a pipe nobody reads: %s in %s", &answers, time.Since(start).Round(time.Millisecond))
	if answers.get("200 <nil>") != 1000 {
		t.Errorf("GET /tasks with stdout not read: %s, want 1,000 × 200", &answers)
	}
}

// TestAuthOutageIsLoggedOnceNotPerRequest: with auth stopped, 300 GET /tasks and 100 logins
// are each answered 503 with Retry-After, and each service logs the outage in one ERROR line
// (it logged one per request: 21,568 in 24 s), then one line when auth is back.
func TestAuthOutageIsLoggedOnceNotPerRequest(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	errorsBefore := map[string]int{"users": len(errorLines(s.users)), "tasks": len(errorLines(s.tasks))}
	if err := s.auth.Stop(); err != nil {
		t.Fatal(err)
	}
	var answers counter
	for i := range 400 {
		var a harness.Answer
		var err error
		if i%4 == 0 {
			a, err = harness.Do("POST", s.users.URL+"/login", "", map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword})
		} else {
			a, err = harness.Do("GET", s.tasks.URL+"/tasks", token, nil)
		}
		answers.add(fmt.Sprintf("%d retry-after=%v %v", a.Status, a.Header.Get("Retry-After") != "", err))
	}
	s.auth.Restart(t)
	harness.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		if err := harness.Expect("GET", s.tasks.URL+"/tasks", token, nil, http.StatusOK); err != nil {
			return err
		}
		return harness.Expect("POST", s.users.URL+"/login", "", map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword}, http.StatusOK)
	})
	for _, p := range []*harness.Process{s.users, s.tasks} {
		lines := errorLines(p)[errorsBefore[p.Name]:]
		back := strings.Contains(p.SettledLogs(), `"msg":"auth is available again"`)
		figure(t, "auth-outage-logs", "%s: %d ERROR lines for the outage (%s in all); \"available again\" logged: %v", p.Name, len(lines), &answers, back)
		if len(lines) > 2 {
			t.Errorf("%s logged %d ERROR lines for one outage, e.g. %.300s", p.Name, len(lines), lines[len(lines)-1])
		}
		if !back {
			t.Errorf("%s did not log that auth is available again", p.Name)
		}
	}
	if answers.get("503 retry-after=true <nil>") != 400 {
		t.Errorf("requests while auth was down: %s, want 400 × 503 with Retry-After", &answers)
	}
}
