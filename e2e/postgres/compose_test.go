package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/modules/compose"

	"github.com/kub-demo/kub-demo/e2e/stack"
)

const (
	composeFile   = "../../deploy/compose/docker-compose.yaml"
	postgresFile  = "../../deploy/compose/docker-compose.postgres.yaml"
	builderImage  = "local/go-builder:1.26" // what scripts/go-builder-image.sh makes
	composeUpTime = 10 * time.Minute        // building the images from a cold cache is most of it
)

// TestComposeWithPostgres brings up docker-compose.yaml with docker-compose.postgres.yaml on
// top, the database being the image scripts/postgres-image.sh makes from this machine's
// PostgreSQL (the official image cannot be pulled here), and checks: the course's flow; that
// the users and tasks are in the database; that the database runs as uid 999 and publishes
// no port; that down then up keeps everything; and that tasks answers 503 while the
// database is stopped and recovers when it is back.
func TestComposeWithPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four images and runs them: skipped in -short mode")
	}
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // its image cannot be pulled; teardown removes all
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")

	run := randomHex(t, 4)
	usersPort, tasksPort := freeHostPort(t), freeHostPort(t)
	password := randomHex(t, 16)
	env := map[string]string{
		"USERS_HOST_PORT":   strconv.Itoa(usersPort),
		"TASKS_HOST_PORT":   strconv.Itoa(tasksPort),
		"VERSION":           "e2e-pg-" + run, // built from this tree, removed at the end
		"JWT_SECRET":        "e2e-only-signing-key-" + randomHex(t, 16),
		"POSTGRES_IMAGE":    postgresImage(t),
		"POSTGRES_PASSWORD": password,
		"GO_IMAGE":          goImage(t),
	}
	project := "kub-demo-e2e-pg-" + run
	s := &composeStack{project: project, env: env}
	t.Cleanup(func() { s.teardown(t) })
	start := time.Now()
	s.up(ctx, t)
	t.Logf("project %s up with %s, all healthy, in %s", project, env["POSTGRES_IMAGE"], time.Since(start).Round(time.Second))

	users := fmt.Sprintf("http://127.0.0.1:%d", usersPort)
	tasks := fmt.Sprintf("http://127.0.0.1:%d", tasksPort)
	token, task := stack.Flow(t, users, tasks)
	stack.Call(t, "POST", users+"/signup", "", map[string]string{"email": "pg-" + run + "@example.com", "password": "pw-" + run})

	t.Run("the data is in the database", func(t *testing.T) {
		out := s.psql(ctx, t, "SELECT count(*) FROM users WHERE email = 'pg-"+run+"@example.com'; SELECT count(*) FROM tasks WHERE task->>'title' = '"+task["title"]+"'")
		if strings.Fields(out)[0] != "1" || strings.Fields(out)[1] != "1" {
			t.Fatalf("psql: %q, want the new user and the task in the database", out)
		}
	})

	t.Run("the database runs as uid 999 and publishes no port", func(t *testing.T) {
		info, err := s.container(ctx, t, "postgres").Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.User != "999:999" {
			t.Errorf("postgres runs as %q, want 999:999", info.Config.User)
		}
		for port, bindings := range info.NetworkSettings.Ports {
			if len(bindings) > 0 {
				t.Errorf("postgres publishes %s on %v", port, bindings)
			}
		}
	})

	t.Run("down then up keeps users and tasks", func(t *testing.T) {
		s.down(ctx, t, false)
		s.up(ctx, t)
		token = stack.Login(t, users, stack.DemoEmail, stack.DemoPassword)
		if !stack.HasTask(t, tasks, token, task["title"]) {
			t.Fatal("the task is gone after down and up")
		}
		stack.Login(t, users, "pg-"+run+"@example.com", "pw-"+run)
	})

	t.Run("tasks answers 503 while the database is stopped, then recovers", func(t *testing.T) {
		db := s.container(ctx, t, "postgres")
		grace := 30 * time.Second
		if err := db.Stop(ctx, &grace); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			if status, err := stack.Send("GET", tasks+"/tasks", token, nil); status != http.StatusServiceUnavailable {
				return fmt.Errorf("GET /tasks with the database stopped: %d %v", status, err)
			}
			return nil
		})
		if err := db.Start(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, func() error {
			if status, err := stack.Send("GET", tasks+"/tasks", token, nil); status != http.StatusOK {
				return fmt.Errorf("GET /tasks once the database is back: %d %v", status, err)
			}
			return nil
		})
		if !stack.HasTask(t, tasks, token, task["title"]) {
			t.Fatal("the task is gone after the database restarted")
		}
	})
}

// postgresImage is $POSTGRES_IMAGE, or the image scripts/postgres-image.sh makes.
func postgresImage(t *testing.T) string {
	if v := os.Getenv("POSTGRES_IMAGE"); v != "" {
		return v
	}
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "postgres-image.sh"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/postgres-image.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// goImage is $GO_IMAGE, else the local builder image when it exists (nothing to pull), else
// empty: the compose file's default.
func goImage(t *testing.T) string {
	if v := os.Getenv("GO_IMAGE"); v != "" {
		return v
	}
	if exec.Command("docker", "image", "inspect", builderImage).Run() == nil {
		return builderImage
	}
	return ""
}

// composeStack drives the two compose files through testcontainers-go's compose module.
type composeStack struct {
	project string
	env     map[string]string
	dc      *compose.DockerCompose
	wasUp   bool
}

func (s *composeStack) open(t *testing.T) {
	dc, err := compose.NewDockerComposeWith(compose.WithStackFiles(composeFile, postgresFile), compose.StackIdentifier(s.project))
	if err != nil {
		t.Fatalf("load the compose files: %v", err)
	}
	dc.WithEnv(s.env)
	s.dc = dc
}

func (s *composeStack) up(ctx context.Context, t *testing.T) {
	t.Helper()
	s.open(t)
	s.wasUp = true
	upCtx, cancel := context.WithTimeout(ctx, composeUpTime)
	defer cancel()
	if err := s.dc.Up(upCtx, compose.Wait(true)); err != nil {
		t.Fatalf("compose up: %v", err)
	}
}

func (s *composeStack) down(ctx context.Context, t *testing.T, wipe bool) {
	t.Helper()
	opts := []compose.StackDownOption{compose.RemoveOrphans(true)}
	if wipe {
		opts = append(opts, compose.RemoveVolumes(true))
	}
	err := s.dc.Down(ctx, opts...)
	_ = s.dc.Close()
	s.dc = nil
	if err != nil {
		t.Errorf("compose down: %v", err)
	}
}

// teardown removes the containers, network, volumes and this run's service images, found by
// the version label their Dockerfiles set (the PostgreSQL image is kept: it is reused).
func (s *composeStack) teardown(t *testing.T) {
	if !s.wasUp {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if t.Failed() && s.dc != nil {
		for _, svc := range []string{"postgres", "users", "tasks"} {
			if c, err := s.dc.ServiceContainer(ctx, svc); err == nil {
				if rc, err := c.Logs(ctx); err == nil {
					b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
					rc.Close()
					t.Logf("--- logs of %s ---\n%s", svc, b)
				}
			}
		}
	}
	if s.dc == nil {
		s.open(t)
	}
	s.down(ctx, t, true)
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
		return
	}
	for _, img := range images.Items {
		if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Logf("remove image %.19s: %v", img.ID, err)
		}
	}
}

func (s *composeStack) container(ctx context.Context, t *testing.T, svc string) *testcontainers.DockerContainer {
	t.Helper()
	c, err := s.dc.ServiceContainer(ctx, svc)
	if err != nil {
		t.Fatalf("container of %s: %v", svc, err)
	}
	return c
}

// psql runs SQL in the database container, as the compose file's database user.
func (s *composeStack) psql(ctx context.Context, t *testing.T, sql string) string {
	t.Helper()
	code, out, err := s.container(ctx, t, "postgres").Exec(ctx, []string{"psql", "-qtA", "-U", "kubdemo", "-d", "kubdemo", "-c", sql}, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("psql: %v", err)
	}
	b, _ := io.ReadAll(out)
	if code != 0 {
		t.Fatalf("psql exited %d: %s", code, b)
	}
	return string(b)
}

// requireDocker skips when no Docker daemon answers, or fails when CI is set.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		defer cli.Close()
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no Docker daemon answers (%v); CI is set, so this fails instead of skipping (.ci/run starts dockerd)", err)
	}
	t.Skipf("no Docker daemon answers, skipping the compose test: %v", err)
}

func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// freeHostPort asks for a port free on every interface, as a published port binds 0.0.0.0.
func freeHostPort(t *testing.T) int {
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
