package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/harness"
)

// TestAgainstTheRealServices builds auth, users, tasks and this command, runs the three
// services on loopback as make run wires them, and runs the built command against them:
// once with everything up, once with auth stopped.
func TestAgainstTheRealServices(t *testing.T) {
	harness.SkipShort(t, "builds the services and runs them")
	bins, err := harness.BuildPackages(t.TempDir(), harness.BuildOptions{}, append(harness.Services, "./cmd/smoke")...)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	auth := harness.Start(t, bins["auth"], []string{"JWT_SECRET=smoke-test-signing-key-0123456789abcdef"})
	authAddress := "AUTH_ADDRESS=" + strings.TrimPrefix(auth.URL, "http://")
	users := harness.Start(t, bins["users"], []string{authAddress, "USERS_FOLDER=" + filepath.Join(data, "users")})
	tasks := harness.Start(t, bins["tasks"], []string{authAddress, "TASKS_FOLDER=" + filepath.Join(data, "tasks")})

	smoke := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bins["smoke"], append([]string{"--users", users.URL, "--tasks", tasks.URL}, args...)...)
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
	if !strings.Contains(users.SettledLogs(), `"svc-test-login"`) || !strings.Contains(tasks.SettledLogs(), `"svc-test-create-task"`) {
		t.Errorf("the request ids printed are not in the services' logs")
	}

	// auth down: login answers 503, the token steps are skipped, and tasks still refuses a
	// request without a token, which needs no call to auth.
	if err := auth.Stop(); err != nil {
		t.Fatalf("auth did not stop cleanly: %v", err)
	}
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
