package hardening

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
