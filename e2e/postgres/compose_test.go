package postgres

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/kub-demo/kub-demo/e2e/composestack"
	"github.com/kub-demo/kub-demo/harness"
)

const (
	composeFile  = "../../deploy/compose/docker-compose.yaml"
	postgresFile = "../../deploy/compose/docker-compose.postgres.yaml"
)

// TestComposeWithPostgres brings up docker-compose.yaml with docker-compose.postgres.yaml on
// top, the database being the image scripts/postgres-image.sh makes from this machine's
// PostgreSQL (the official image cannot be pulled here), and checks: the course's flow; that
// the users and tasks are in the database; that the database runs as uid 999 and publishes
// no port; that down then up keeps everything; and that tasks answers 503 while the
// database is stopped and recovers when it is back.
func TestComposeWithPostgres(t *testing.T) {
	composestack.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	run := harness.RandomHex(t, 4)
	env := composestack.Env(t, "e2e-pg-"+run)
	env["POSTGRES_IMAGE"] = postgresImage(t)
	env["POSTGRES_PASSWORD"] = harness.RandomHex(t, 16)
	s := composestack.New(t, "kub-demo-e2e-pg-"+run, env, composeFile, postgresFile)
	start := time.Now()
	s.Up(ctx, t)
	t.Logf("project %s up with %s, all healthy, in %s", s.Project, env["POSTGRES_IMAGE"], time.Since(start).Round(time.Second))

	users, tasks := s.URL(ctx, t, "users", "8080/tcp"), s.URL(ctx, t, "tasks", "8000/tcp")
	token, task := harness.Flow(t, users, tasks)
	harness.Call(t, "POST", users+"/signup", "", map[string]string{"email": "pg-" + run + "@example.com", "password": "pw-" + run})

	t.Run("the data is in the database", func(t *testing.T) {
		out := psql(ctx, t, s, "SELECT count(*) FROM users WHERE email = 'pg-"+run+"@example.com'; SELECT count(*) FROM tasks WHERE task->>'title' = '"+task["title"]+"'")
		if strings.Fields(out)[0] != "1" || strings.Fields(out)[1] != "1" {
			t.Fatalf("psql: %q, want the new user and the task in the database", out)
		}
	})

	t.Run("the database runs as uid 999 and publishes no port", func(t *testing.T) {
		info, err := s.Container(ctx, t, "postgres").Inspect(ctx)
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
		s.Down(ctx, t, false)
		s.Up(ctx, t)
		users, tasks = s.URL(ctx, t, "users", "8080/tcp"), s.URL(ctx, t, "tasks", "8000/tcp")
		token = harness.Login(t, users, harness.DemoEmail, harness.DemoPassword)
		if !harness.HasTask(t, tasks, token, task["title"]) {
			t.Fatal("the task is gone after down and up")
		}
		harness.Login(t, users, "pg-"+run+"@example.com", "pw-"+run)
	})

	t.Run("tasks answers 503 while the database is stopped, then recovers", func(t *testing.T) {
		db := s.Container(ctx, t, "postgres")
		grace := 30 * time.Second
		if err := db.Stop(ctx, &grace); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 30*time.Second, 500*time.Millisecond, func() error {
			return harness.Expect("GET", tasks+"/tasks", token, nil, http.StatusServiceUnavailable)
		})
		if err := db.Start(ctx); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 60*time.Second, 500*time.Millisecond, func() error {
			return harness.Expect("GET", tasks+"/tasks", token, nil, http.StatusOK)
		})
		if !harness.HasTask(t, tasks, token, task["title"]) {
			t.Fatal("the task is gone after the database restarted")
		}
	})
}

// postgresImage is $POSTGRES_IMAGE, or the image scripts/postgres-image.sh makes.
func postgresImage(t *testing.T) string {
	if v := os.Getenv("POSTGRES_IMAGE"); v != "" {
		return v
	}
	root, err := harness.RepoRoot()
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

// psql runs SQL in the database container, as the compose file's database user.
func psql(ctx context.Context, t *testing.T, s *composestack.Stack, sql string) string {
	t.Helper()
	code, out, err := s.Container(ctx, t, "postgres").Exec(ctx, []string{"psql", "-qtA", "-U", "kubdemo", "-d", "kubdemo", "-c", sql}, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("psql: %v", err)
	}
	b, _ := io.ReadAll(out)
	if code != 0 {
		t.Fatalf("psql exited %d: %s", code, b)
	}
	return string(b)
}
