// Package compose runs deploy/compose/docker-compose.yaml itself, in real containers,
// and drives the course's flow through the ports it publishes.
//
// The images are built by compose from the Dockerfiles, FROM $GO_IMAGE; with no registry
// reachable set GO_IMAGE to the local builder image (scripts/go-builder-image.sh), which the
// test also picks on its own when it exists. With no Docker daemon the test skips, unless
// CI is set: then it fails.
package compose_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/kub-demo/kub-demo/e2e/composestack"
	"github.com/kub-demo/kub-demo/harness"
)

const composeFile = "../../deploy/compose/docker-compose.yaml"

// TestComposeStack brings the compose file up on host ports Docker picks and checks, in
// order: health, the images, that only the public ports are published (not auth's, not the
// metrics ports), the public login → POST /tasks → GET /tasks flow and the smoke command,
// that down then up keeps users and tasks (named volumes), and that tasks answers 503 while
// auth is stopped and recovers when it starts again.
func TestComposeStack(t *testing.T) {
	composestack.Require(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	run := harness.RandomHex(t, 4)
	env := composestack.Env(t, "e2e-"+run)
	env["LOG_LEVEL"] = "debug"
	s := composestack.New(t, "kub-demo-e2e-"+run, env, composeFile)

	start := time.Now()
	s.Up(ctx, t)
	t.Logf("project %s built and up, all healthy, in %s (GO_IMAGE=%s)", s.Project, time.Since(start).Round(time.Second), env["GO_IMAGE"])
	for _, svc := range []string{"auth", "users", "tasks", "frontend"} {
		if h := health(ctx, t, s, svc); h != "healthy" {
			t.Fatalf("%s: health %q after up, want healthy", svc, h)
		}
	}
	users, tasks := s.URL(ctx, t, "users", "8080/tcp"), s.URL(ctx, t, "tasks", "8000/tcp")

	t.Run("images", func(t *testing.T) {
		for svc, port := range map[string]string{"auth": "80/tcp", "users": "8080/tcp", "tasks": "8000/tcp", "frontend": "3000/tcp"} {
			checkImage(ctx, t, s.Container(ctx, t, svc), svc, port)
		}
	})

	t.Run("images hold the modules the tests ran", func(t *testing.T) {
		built := t.TempDir()
		if out, err := exec.CommandContext(ctx, "make", "-C", "../..", "build", "BIN="+built).CombinedOutput(); err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		for _, svc := range []string{"auth", "users", "tasks", "frontend"} {
			fromImage := filepath.Join(t.TempDir(), svc)
			id := s.Container(ctx, t, svc).GetContainerID()
			if out, err := exec.CommandContext(ctx, "docker", "cp", id+":/"+svc, fromImage).CombinedOutput(); err != nil {
				t.Fatalf("docker cp %s: %v\n%s", svc, err, out)
			}
			want, got := modules(t, filepath.Join(built, svc)), modules(t, fromImage)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: the image's binary was built from other modules than make build's (go version -m):\nimage:\n%s\nmake build:\n%s",
					svc, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			t.Logf("%s: the image and make build agree on %d module lines", svc, len(got))
		}
	})

	t.Run("published ports", func(t *testing.T) {
		for svc, want := range map[string]string{"users": "8080/tcp", "tasks": "8000/tcp", "frontend": "3000/tcp", "auth": ""} {
			published := publishedPorts(ctx, t, s.Container(ctx, t, svc))
			if want == "" && len(published) != 0 {
				t.Errorf("auth publishes %v, want nothing: it must be reachable only inside the project network", published)
			}
			if want != "" && (len(published) != 1 || published[0] != want) {
				t.Errorf("%s publishes %v, want only %s (its metrics port, 9090, stays inside)", svc, published, want)
			}
		}
	})

	var token string
	task := map[string]string{"title": "e2e " + run, "text": "through compose, TASK_SPLIT inside"}
	newUser := map[string]string{"email": "e2e-" + run + "@example.com", "password": "e2e-password-" + run}

	t.Run("login, store and list a task", func(t *testing.T) {
		token = harness.Login(t, users, harness.DemoEmail, harness.DemoPassword)
		if a := harness.Call(t, http.MethodPost, tasks+"/tasks", token, task); a.Status != http.StatusCreated || a.Message() != "Task stored." {
			t.Fatalf("POST /tasks: %d %s, want 201 Task stored.", a.Status, a.Raw)
		}
		requireTask(t, tasks, token, task)
		if a := harness.Call(t, http.MethodGet, tasks+"/tasks", "", nil); a.Status != http.StatusUnauthorized || a.Message() != "No token provided." {
			t.Errorf("GET /tasks without a token: %d %s, want 401 No token provided.", a.Status, a.Raw)
		}
		if a := harness.Call(t, http.MethodPost, users+"/signup", "", newUser); a.Status != http.StatusCreated {
			t.Fatalf("POST /signup: %d %s, want 201", a.Status, a.Raw)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// The web UI's server forwards /api/ to users and tasks by their compose names.
	t.Run("the frontend's page and /api/", func(t *testing.T) {
		frontend := s.URL(ctx, t, "frontend", "3000/tcp")
		page, err := http.Get(frontend + "/")
		if err != nil {
			t.Fatal(err)
		}
		page.Body.Close()
		if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET /: %s %s", page.Status, page.Header.Get("Content-Type"))
		}
		apiToken := harness.Login(t, frontend+"/api", newUser["email"], newUser["password"])
		if a := harness.Call(t, http.MethodPost, frontend+"/api/tasks", apiToken, task); a.Status != http.StatusCreated {
			t.Fatalf("POST /api/tasks through the frontend: %d %s", a.Status, a.Raw)
		}
		requireTask(t, frontend+"/api", apiToken, task)
	})

	// What docs/smoke-and-postman.md tells learners to run against their stack.
	t.Run("smoke command", func(t *testing.T) {
		root, err := harness.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		prefix := "e2e-" + run
		cmd := exec.CommandContext(runCtx, "go", "run", "./cmd/smoke", "--users", users, "--tasks", tasks, "--request-id", prefix)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		t.Logf("go run ./cmd/smoke:\n%s", out)
		if err != nil {
			t.Fatalf("go run ./cmd/smoke: %v, want exit 0", err)
		}
		for _, step := range []string{"login", "create-task", "find-task", "no-token"} {
			if !regexp.MustCompile(`(?m)^PASS  ` + step + ` .*request-id=` + prefix + `-` + step + `$`).Match(out) {
				t.Errorf("no PASS line for step %s with request-id=%s-%s", step, prefix, step)
			}
		}
		if !bytes.Contains(out, []byte("smoke: PASS, 4 of 4 steps passed")) {
			t.Errorf("no PASS summary")
		}
		// The id the command printed is in the container's log, as the docs promise for kubectl
		// logs (within the 50 ms a service keeps log lines in its buffer).
		harness.Eventually(t, 5*time.Second, 100*time.Millisecond, func() error {
			rc, err := s.Container(ctx, t, "tasks").Logs(ctx)
			if err != nil {
				return fmt.Errorf("logs of tasks: %w", err)
			}
			logs, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Contains(logs, []byte(`"`+prefix+`-create-task"`)) {
				return fmt.Errorf("tasks' log has no line with request id %s-create-task", prefix)
			}
			return nil
		})
	})

	t.Run("down then up keeps users and tasks", func(t *testing.T) {
		start := time.Now()
		s.Down(ctx, t, false)
		s.Up(ctx, t)
		t.Logf("down and up again in %s", time.Since(start).Round(time.Second))
		users, tasks = s.URL(ctx, t, "users", "8080/tcp"), s.URL(ctx, t, "tasks", "8000/tcp")
		token = harness.Login(t, users, harness.DemoEmail, harness.DemoPassword)
		requireTask(t, tasks, token, task)
		harness.Login(t, users, newUser["email"], newUser["password"])
	})

	t.Run("tasks answers 503 while auth is stopped, then recovers", func(t *testing.T) {
		authC := s.Container(ctx, t, "auth")
		grace := 15 * time.Second
		if err := authC.Stop(ctx, &grace); err != nil {
			t.Fatalf("stop auth: %v", err)
		}
		harness.Eventually(t, 30*time.Second, 500*time.Millisecond, func() error {
			a, err := harness.Do(http.MethodGet, tasks+"/tasks", token, nil)
			if err != nil || a.Status != http.StatusServiceUnavailable || a.Message() == "" {
				return fmt.Errorf("GET /tasks with auth stopped: %d %s %v, want 503 with a JSON message", a.Status, a.Raw, err)
			}
			return nil
		})
		// users and tasks stay alive: their health does not depend on auth.
		for _, svc := range []string{"users", "tasks"} {
			if h := health(ctx, t, s, svc); h == "unhealthy" {
				t.Errorf("%s turned unhealthy while auth was stopped", svc)
			}
		}
		if err := authC.Start(ctx); err != nil {
			t.Fatalf("start auth: %v", err)
		}
		harness.Eventually(t, 60*time.Second, 500*time.Millisecond, func() error {
			return harness.Expect(http.MethodGet, tasks+"/tasks", token, nil, http.StatusOK)
		})
		requireTask(t, tasks, token, task)
	})
}

// requireTask fails the test unless GET /tasks lists want, title and text.
func requireTask(t *testing.T, tasks, token string, want map[string]string) {
	t.Helper()
	a := harness.Call(t, http.MethodGet, tasks+"/tasks", token, nil)
	list, _ := a.Body["tasks"].([]any)
	for _, item := range list {
		if m, ok := item.(map[string]any); ok && m["title"] == want["title"] && m["text"] == want["text"] {
			return
		}
	}
	t.Fatalf("GET /tasks: %d, task %v not among %v", a.Status, want, list)
}

func health(ctx context.Context, t *testing.T, s *composestack.Stack, svc string) string {
	t.Helper()
	st, err := s.Container(ctx, t, svc).State(ctx)
	if err != nil {
		t.Fatalf("state of %s: %v", svc, err)
	}
	if st.Health == nil {
		return "no healthcheck"
	}
	return string(st.Health.Status)
}

// publishedPorts lists the container ports the container publishes on the host, from both
// the requested bindings and the ones Docker made.
func publishedPorts(ctx context.Context, t *testing.T, c *testcontainers.DockerContainer) []string {
	t.Helper()
	info, err := c.Inspect(ctx)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	seen := map[string]bool{}
	var ports []string
	for port, bindings := range info.NetworkSettings.Ports {
		if len(bindings) > 0 && !seen[port.String()] {
			seen[port.String()] = true
			ports = append(ports, port.String())
		}
	}
	for port, bindings := range info.HostConfig.PortBindings {
		if len(bindings) > 0 && !seen[port.String()] {
			seen[port.String()] = true
			ports = append(ports, port.String())
		}
	}
	return ports
}

// maxImageSize is the bound: the course's images were several hundred MB.
const maxImageSize = 20 << 20

// checkImage looks at the image the service's container runs: small, a numeric non-root
// user, an exec-form entrypoint that is the binary, the healthcheck through -healthcheck,
// the original port exposed.
func checkImage(ctx context.Context, t *testing.T, c *testcontainers.DockerContainer, svc, port string) {
	t.Helper()
	info, err := c.Inspect(ctx)
	if err != nil {
		t.Fatalf("inspect %s: %v", svc, err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()
	img, err := cli.ImageInspect(ctx, info.Image)
	if err != nil {
		t.Fatalf("inspect image of %s: %v", svc, err)
	}
	t.Logf("%s: image %s, %.1f MB", svc, info.Config.Image, float64(img.Size)/1e6)
	if img.Size >= maxImageSize {
		t.Errorf("%s: image is %d bytes, want under 20 MB", svc, img.Size)
	}
	cfg := img.Config
	if cfg == nil {
		t.Fatalf("%s: image has no config", svc)
	}
	if cfg.User != "65532:65532" {
		t.Errorf("%s: image user %q, want 65532:65532 (numeric, non-root)", svc, cfg.User)
	}
	if got, want := fmt.Sprint(cfg.Entrypoint), fmt.Sprint([]string{"/" + svc}); got != want {
		t.Errorf("%s: entrypoint %s, want exec form %s", svc, got, want)
	}
	if cfg.Healthcheck == nil || fmt.Sprint(cfg.Healthcheck.Test) != fmt.Sprint([]string{"CMD", "/" + svc, "-healthcheck"}) {
		t.Errorf("%s: healthcheck %+v, want CMD /%s -healthcheck", svc, cfg.Healthcheck, svc)
	}
	if _, ok := cfg.ExposedPorts[port]; !ok {
		t.Errorf("%s: exposes %v, want %s", svc, cfg.ExposedPorts, port)
	}
}

// modules is what go version -m says binary was built from: its Go version, then its main
// module and each dependency with version and checksum (build settings such as vcs.revision
// are left out: an image is built without .git).
func modules(t *testing.T, binary string) []string {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", binary).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", binary, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	_, goVersion, _ := strings.Cut(lines[0], ": ")
	kept := []string{goVersion}
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "mod" || f[0] == "dep" || f[0] == "=>") {
			kept = append(kept, strings.Join(f, " "))
		}
	}
	if len(kept) < 2 {
		t.Fatalf("go version -m %s names no modules:\n%s", binary, out)
	}
	return kept
}
