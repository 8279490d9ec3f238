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
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/compose"

	e2estack "github.com/kub-demo/kub-demo/e2e/stack"
)

const (
	composeFile  = "../../deploy/compose/docker-compose.yaml"
	builderImage = "local/go-builder:1.26" // what scripts/go-builder-image.sh makes
	demoEmail    = "test@gmail.com"
	demoPassword = "testers"
	// Building the three images from a cold cache is most of it.
	upTimeout = 10 * time.Minute
)

func TestMain(m *testing.M) {
	// Ryuk's image cannot be pulled here, and the test removes what it made itself. Without
	// the override testcontainers takes this VM for a container and looks for a gateway.
	setDefault("TESTCONTAINERS_RYUK_DISABLED", "true")
	setDefault("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	os.Exit(m.Run())
}

func setDefault(name, value string) {
	if _, ok := os.LookupEnv(name); !ok {
		os.Setenv(name, value)
	}
}

// TestComposeStack brings the compose file up on non-default host ports and checks, in order:
// health, the public login → POST /tasks → GET /tasks flow, that auth publishes no host port,
// that down then up keeps users and tasks (named volumes), and that tasks answers 503 while
// auth is stopped and recovers when it starts again.
func TestComposeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three images and runs them: skipped in -short mode")
	}
	requireDocker(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	usersPort, tasksPort := freePort(t), freePort(t)
	run := randomHex(t, 4)
	env := map[string]string{
		"USERS_HOST_PORT": strconv.Itoa(usersPort),
		"TASKS_HOST_PORT": strconv.Itoa(tasksPort),
		// A tag of this run's own, so the images are built from this tree (compose builds
		// only missing images) and removed at the end without touching `make images`' tags.
		"VERSION":    "e2e-" + run,
		"JWT_SECRET": "e2e-only-signing-key-" + randomHex(t, 16),
		"LOG_LEVEL":  "debug",
		"GO_IMAGE":   goImage(ctx, t),
	}
	project := "kub-demo-e2e-" + run
	t.Logf("project %s: users on host port %d, tasks on %d, GO_IMAGE=%s", project, usersPort, tasksPort, env["GO_IMAGE"])

	s := &stack{project: project, env: env}
	t.Cleanup(func() { s.teardown(t) })

	start := time.Now()
	s.up(ctx, t)
	t.Logf("built and up, all healthy, in %s", time.Since(start).Round(time.Second))
	for _, svc := range []string{"auth", "users", "tasks"} {
		if h := s.health(ctx, t, svc); h != "healthy" {
			t.Fatalf("%s: health %q after up, want healthy", svc, h)
		}
	}

	users := fmt.Sprintf("http://127.0.0.1:%d", usersPort)
	tasks := fmt.Sprintf("http://127.0.0.1:%d", tasksPort)

	t.Run("images", func(t *testing.T) {
		for svc, port := range map[string]string{"auth": "80/tcp", "users": "8080/tcp", "tasks": "8000/tcp"} {
			s.checkImage(ctx, t, svc, port)
		}
	})

	t.Run("published ports", func(t *testing.T) {
		if got := s.hostPorts(ctx, t, "users"); fmt.Sprint(got) != fmt.Sprint([]int{usersPort}) {
			t.Errorf("users publishes host ports %v, want [%d] (USERS_HOST_PORT)", got, usersPort)
		}
		if got := s.hostPorts(ctx, t, "tasks"); fmt.Sprint(got) != fmt.Sprint([]int{tasksPort}) {
			t.Errorf("tasks publishes host ports %v, want [%d] (TASKS_HOST_PORT)", got, tasksPort)
		}
		if got := s.hostPorts(ctx, t, "auth"); len(got) != 0 {
			t.Errorf("auth publishes host ports %v, want none: it must be reachable only inside the project network", got)
		}
		// Nothing on the host answers on auth's port either (unless something unrelated
		// listens there, which this test cannot tell apart).
		if c, err := net.DialTimeout("tcp", "127.0.0.1:80", time.Second); err == nil {
			c.Close()
			t.Logf("something listens on host port 80; it is not this project's auth (no binding above)")
		}
	})

	var token string
	task := map[string]string{"title": "e2e " + run, "text": "through compose, TASK_SPLIT inside"}
	newUser := map[string]string{"email": "e2e-" + run + "@example.com", "password": "e2e-password-" + run}

	t.Run("login, store and list a task", func(t *testing.T) {
		token = login(ctx, t, users, demoEmail, demoPassword)

		status, body := call(ctx, t, http.MethodPost, tasks+"/tasks", token, task)
		if status != http.StatusCreated || body["message"] != "Task stored." {
			t.Fatalf("POST /tasks: %d %v, want 201 Task stored.", status, body)
		}
		requireTask(ctx, t, tasks, token, task)

		status, body = call(ctx, t, http.MethodGet, tasks+"/tasks", "", nil)
		if status != http.StatusUnauthorized || body["message"] != "No token provided." {
			t.Errorf("GET /tasks without a token: %d %v, want 401 No token provided.", status, body)
		}

		status, body = call(ctx, t, http.MethodPost, users+"/signup", "", newUser)
		if status != http.StatusCreated {
			t.Fatalf("POST /signup: %d %v, want 201", status, body)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// What docs/smoke-and-postman.md tells learners to run against their stack.
	t.Run("smoke command", func(t *testing.T) {
		root, err := e2estack.RepoRoot()
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
		// The id the command printed is in the container's log, as the docs promise for kubectl logs.
		rc, err := s.container(ctx, t, "tasks").Logs(ctx)
		if err != nil {
			t.Fatalf("logs of tasks: %v", err)
		}
		logs, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Contains(logs, []byte(`"`+prefix+`-create-task"`)) {
			t.Errorf("tasks' log has no line with request id %s-create-task", prefix)
		}
	})

	t.Run("down then up keeps users and tasks", func(t *testing.T) {
		start := time.Now()
		s.down(ctx, t, false)
		s.up(ctx, t)
		t.Logf("down and up again in %s", time.Since(start).Round(time.Second))

		token = login(ctx, t, users, demoEmail, demoPassword)
		requireTask(ctx, t, tasks, token, task)
		login(ctx, t, users, newUser["email"], newUser["password"])
	})

	t.Run("tasks answers 503 while auth is stopped, then recovers", func(t *testing.T) {
		authC := s.container(ctx, t, "auth")
		grace := 15 * time.Second
		if err := authC.Stop(ctx, &grace); err != nil {
			t.Fatalf("stop auth: %v", err)
		}
		eventually(ctx, t, 30*time.Second, "tasks to answer 503 with auth stopped", func() error {
			status, body := call(ctx, t, http.MethodGet, tasks+"/tasks", token, nil)
			if status != http.StatusServiceUnavailable {
				return fmt.Errorf("GET /tasks: %d %v", status, body)
			}
			if msg, _ := body["message"].(string); msg == "" {
				return fmt.Errorf("503 without a JSON message: %v", body)
			}
			return nil
		})
		// users and tasks stay alive: their health does not depend on auth.
		for _, svc := range []string{"users", "tasks"} {
			if h := s.health(ctx, t, svc); h == "unhealthy" {
				t.Errorf("%s turned unhealthy while auth was stopped", svc)
			}
		}

		if err := authC.Start(ctx); err != nil {
			t.Fatalf("start auth: %v", err)
		}
		eventually(ctx, t, 60*time.Second, "tasks to recover once auth is back", func() error {
			status, body := call(ctx, t, http.MethodGet, tasks+"/tasks", token, nil)
			if status != http.StatusOK {
				return fmt.Errorf("GET /tasks: %d %v", status, body)
			}
			return nil
		})
		requireTask(ctx, t, tasks, token, task)
	})
}

// stack drives the compose file through testcontainers-go's compose module (Docker
// Compose as a library). A DockerCompose caches the containers it found, so each up
// after a down gets a fresh one with the same project name: same volumes and network.
type stack struct {
	project string
	env     map[string]string
	dc      *compose.DockerCompose
	wasUp   bool
}

func (s *stack) up(ctx context.Context, t *testing.T) {
	t.Helper()
	dc, err := compose.NewDockerComposeWith(compose.WithStackFiles(composeFile), compose.StackIdentifier(s.project))
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	dc.WithEnv(s.env)
	s.dc, s.wasUp = dc, true
	upCtx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	// Wait: like `up --wait`, returns once every service is running and healthy.
	if err := dc.Up(upCtx, compose.Wait(true)); err != nil { // teardown shows the logs
		if strings.Contains(err.Error(), "pull") && os.Getenv("GO_IMAGE") == "" {
			t.Logf("hint: with no registry, make the local builder image first (make builder-image) or set GO_IMAGE")
		}
		t.Fatalf("compose up: %v", err)
	}
}

func (s *stack) down(ctx context.Context, t *testing.T, wipe bool) {
	t.Helper()
	opts := []compose.StackDownOption{compose.RemoveOrphans(true)}
	if wipe {
		opts = append(opts, compose.RemoveVolumes(true), compose.RemoveImagesAll)
	}
	err := s.dc.Down(ctx, opts...)
	_ = s.dc.Close()
	s.dc = nil
	if err != nil {
		t.Errorf("compose down: %v", err)
	}
}

// teardown removes the containers, network, volumes and this run's images.
func (s *stack) teardown(t *testing.T) {
	if t.Failed() && s.dc != nil {
		s.dumpLogs(context.Background(), t)
	}
	if !s.wasUp {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if s.dc == nil { // down already ran: a fresh handle knows the project by its name
		dc, err := compose.NewDockerComposeWith(compose.WithStackFiles(composeFile), compose.StackIdentifier(s.project))
		if err != nil {
			t.Errorf("teardown: %v", err)
			return
		}
		dc.WithEnv(s.env)
		s.dc = dc
	}
	s.down(ctx, t, true)
	s.removeLeftovers(ctx, t)
}

// removeLeftovers deletes what `down -v --rmi all` leaves of this run: the untagged parent
// images (compose adds a label step on top of each Dockerfile's image and removes only that
// one), found by the version label the Dockerfiles set, and checks that the volumes are gone.
func (s *stack) removeLeftovers(ctx context.Context, t *testing.T) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Errorf("docker client: %v", err)
		return
	}
	defer cli.Close()
	images, err := cli.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", "org.opencontainers.image.version="+s.env["VERSION"]),
	})
	if err != nil {
		t.Errorf("list images: %v", err)
	}
	for _, img := range images.Items {
		if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			t.Logf("remove image %.19s: %v", img.ID, err)
		}
	}
	volumes, err := cli.VolumeList(ctx, client.VolumeListOptions{
		Filters: make(client.Filters).Add("label", "com.docker.compose.project="+s.project),
	})
	if err != nil {
		t.Errorf("list volumes: %v", err)
	}
	for _, v := range volumes.Items {
		t.Errorf("volume %s is left after down with volumes removed", v.Name)
	}
}

func (s *stack) container(ctx context.Context, t *testing.T, svc string) *testcontainers.DockerContainer {
	t.Helper()
	c, err := s.dc.ServiceContainer(ctx, svc)
	if err != nil {
		t.Fatalf("container of %s: %v", svc, err)
	}
	return c
}

func (s *stack) health(ctx context.Context, t *testing.T, svc string) string {
	t.Helper()
	st, err := s.container(ctx, t, svc).State(ctx)
	if err != nil {
		t.Fatalf("state of %s: %v", svc, err)
	}
	if st.Health == nil {
		return "no healthcheck"
	}
	return string(st.Health.Status)
}

// hostPorts lists the host ports the service's container publishes, from both the
// requested bindings and the ones Docker made.
func (s *stack) hostPorts(ctx context.Context, t *testing.T, svc string) []int {
	t.Helper()
	info, err := s.container(ctx, t, svc).Inspect(ctx)
	if err != nil {
		t.Fatalf("inspect %s: %v", svc, err)
	}
	seen := map[int]bool{}
	var ports []int
	add := func(hostPort string) {
		if p, err := strconv.Atoi(hostPort); err == nil && p != 0 && !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	for _, bindings := range info.HostConfig.PortBindings {
		for _, b := range bindings {
			add(b.HostPort)
		}
	}
	for _, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			add(b.HostPort)
		}
	}
	return ports
}

// maxImageSize is the bound: the course's images were several hundred MB.
const maxImageSize = 20 << 20

// checkImage looks at the image the service's container runs: small, a numeric non-root
// user, an exec-form entrypoint that is the binary, the healthcheck through -healthcheck,
// the original port exposed.
func (s *stack) checkImage(ctx context.Context, t *testing.T, svc, port string) {
	t.Helper()
	info, err := s.container(ctx, t, svc).Inspect(ctx)
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

func (s *stack) dumpLogs(ctx context.Context, t *testing.T) {
	if s.dc == nil {
		return
	}
	for _, svc := range []string{"auth", "users", "tasks"} {
		c, err := s.dc.ServiceContainer(ctx, svc)
		if err != nil {
			continue
		}
		rc, err := c.Logs(ctx)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(rc, 16<<20))
		rc.Close()
		if len(b) > 32<<10 { // the end tells why
			b = append([]byte("…\n"), b[len(b)-32<<10:]...)
		}
		t.Logf("--- logs of %s ---\n%s", svc, b)
	}
}

// requireDocker skips when no Docker daemon answers, or fails when CI is set.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		// Compose (a Docker CLI) goes to $DOCKER_HOST or the default socket, while
		// testcontainers falls back to other sockets: both must answer.
		env, err := client.New(client.FromEnv)
		if err != nil {
			return err
		}
		defer env.Close()
		if _, err := env.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
			return err
		}
		tc, err := testcontainers.NewDockerClientWithOpts(ctx)
		if err != nil {
			return err
		}
		defer tc.Close()
		_, err = tc.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		return err
	}()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no Docker daemon answers (%v); CI is set, so this fails instead of skipping (.ci/run starts dockerd)", err)
	}
	t.Skipf("no Docker daemon answers, skipping the compose test: %v", err)
}

// goImage is the build stage's image: $GO_IMAGE, else the local builder image when it
// exists (nothing to pull), else empty so the compose file's default applies.
func goImage(ctx context.Context, t *testing.T) string {
	if v := os.Getenv("GO_IMAGE"); v != "" {
		return v
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()
	if imageExists(ctx, cli, builderImage) {
		return builderImage
	}
	return ""
}

func login(ctx context.Context, t *testing.T, users, email, password string) string {
	t.Helper()
	status, body := call(ctx, t, http.MethodPost, users+"/login", "", map[string]string{"email": email, "password": password})
	token, _ := body["token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("POST /login as %s: %d %v, want 200 with a token", email, status, body)
	}
	return token
}

func requireTask(ctx context.Context, t *testing.T, tasks, token string, want map[string]string) {
	t.Helper()
	status, body := call(ctx, t, http.MethodGet, tasks+"/tasks", token, nil)
	if status != http.StatusOK || body["message"] != "Tasks loaded." {
		t.Fatalf("GET /tasks: %d %v, want 200 Tasks loaded.", status, body)
	}
	list, _ := body["tasks"].([]any)
	for _, item := range list {
		if m, ok := item.(map[string]any); ok && m["title"] == want["title"] && m["text"] == want["text"] {
			return
		}
	}
	t.Fatalf("GET /tasks: task %v not among %v", want, list)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// call sends a JSON request and decodes a JSON object answer; status 0 means no answer.
func call(ctx context.Context, t *testing.T, method, url, token string, in any) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("%s %s: %d with a body that is not a JSON object: %q", method, url, res.StatusCode, raw)
	}
	return res.StatusCode, out
}

// eventually retries check every half second until it succeeds or timeout passes.
func eventually(ctx context.Context, t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waited %s for %s: %v", timeout, what, errors.Join(err, ctx.Err()))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// freePort asks the kernel for a port that is free on every interface, as a published
// port binds 0.0.0.0.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func imageExists(ctx context.Context, cli *testcontainers.DockerClient, ref string) bool {
	_, err := cli.ImageInspect(ctx, ref)
	return err == nil
}
