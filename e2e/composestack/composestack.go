// Package composestack runs deploy/compose's files as a project of a test's own, through
// testcontainers-go's compose module (Docker Compose as a library), and removes everything the
// project made at the end: containers, network, volumes and the images it built.
package composestack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/compose"

	"github.com/kub-demo/kub-demo/harness"
)

// BuilderImage is what scripts/go-builder-image.sh makes: a Go build image from this
// machine's Go, for builds with no registry.
const BuilderImage = "local/go-builder:1.26"

// Ryuk's image cannot be pulled here, and teardown removes what the project made. Without
// the override testcontainers takes this VM for a container and looks for a gateway. Set
// before testcontainers reads its configuration (once, at its first use).
func init() {
	for name, value := range map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_HOST_OVERRIDE": "localhost"} {
		if _, ok := os.LookupEnv(name); !ok {
			os.Setenv(name, value)
		}
	}
}

// upTimeout bounds one up: building the images from a cold cache is most of it.
const upTimeout = 10 * time.Minute

// Stack is one project of compose files. A DockerCompose caches the containers it found, so
// each Up after a Down gets a fresh one with the same project name: same volumes and network.
type Stack struct {
	Project string
	Files   []string
	// Env is what the compose files read. VERSION should be a tag of the test's own: the
	// images built with it are removed at the end.
	Env map[string]string

	dc    *compose.DockerCompose
	wasUp bool
}

// New returns a stack of files (paths from the test's folder) whose teardown runs when the
// test ends. It needs Docker: see RequireDocker.
func New(t *testing.T, project string, env map[string]string, files ...string) *Stack {
	t.Helper()
	s := &Stack{Project: project, Files: files, Env: env}
	t.Cleanup(func() { s.teardown(t) })
	return s
}

func (s *Stack) open(t *testing.T) {
	t.Helper()
	dc, err := compose.NewDockerComposeWith(compose.WithStackFiles(s.Files...), compose.StackIdentifier(s.Project))
	if err != nil {
		t.Fatalf("load %v: %v", s.Files, err)
	}
	dc.WithEnv(s.Env)
	s.dc = dc
}

// Up builds what is missing and starts the project; like `up --wait`, it returns once every
// service is running and healthy.
func (s *Stack) Up(ctx context.Context, t *testing.T) {
	t.Helper()
	s.open(t)
	s.wasUp = true
	upCtx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	if err := s.dc.Up(upCtx, compose.Wait(true)); err != nil { // teardown shows the logs
		if strings.Contains(err.Error(), "pull") && os.Getenv("GO_IMAGE") == "" {
			t.Logf("hint: with no registry, make the local builder image first (make builder-image) or set GO_IMAGE")
		}
		t.Fatalf("compose up: %v", err)
	}
}

// Down stops and removes the containers; wipe removes the volumes and built images too.
func (s *Stack) Down(ctx context.Context, t *testing.T, wipe bool) {
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

// Container is the container of service svc.
func (s *Stack) Container(ctx context.Context, t *testing.T, svc string) *testcontainers.DockerContainer {
	t.Helper()
	c, err := s.dc.ServiceContainer(ctx, svc)
	if err != nil {
		t.Fatalf("container of %s: %v", svc, err)
	}
	return c
}

// URL is http://127.0.0.1:<host port> of svc's container port (such as "8080/tcp"): the
// files publish on host port 0, so Docker picks a free one, and each Up may pick another.
func (s *Stack) URL(ctx context.Context, t *testing.T, svc, port string) string {
	t.Helper()
	mapped, err := s.Container(ctx, t, svc).MappedPort(ctx, port)
	if err != nil {
		t.Fatalf("host port of %s %s: %v", svc, port, err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", mapped.Num())
}

// teardown shows the logs if the test failed, then removes the containers, network, volumes
// and this run's images (found by the version label the Dockerfiles set: compose removes the
// image it labelled, not its parent), and checks that no volume is left.
func (s *Stack) teardown(t *testing.T) {
	if !s.wasUp {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if t.Failed() && s.dc != nil {
		s.dumpLogs(ctx, t)
	}
	if s.dc == nil { // down already ran: a fresh handle knows the project by its name
		s.open(t)
	}
	s.Down(ctx, t, true)
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Errorf("docker client: %v", err)
		return
	}
	defer cli.Close()
	images, err := cli.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", "org.opencontainers.image.version="+s.Env["VERSION"]),
	})
	if err != nil {
		t.Errorf("list images: %v", err)
	}
	for _, img := range images.Items {
		if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Logf("remove image %.19s: %v", img.ID, err)
		}
	}
	volumes, err := cli.VolumeList(ctx, client.VolumeListOptions{
		Filters: make(client.Filters).Add("label", "com.docker.compose.project="+s.Project),
	})
	if err != nil {
		t.Errorf("list volumes: %v", err)
	}
	for _, v := range volumes.Items {
		t.Errorf("volume %s is left after down with volumes removed", v.Name)
	}
}

func (s *Stack) dumpLogs(ctx context.Context, t *testing.T) {
	for _, svc := range s.dc.Services() {
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

// RequireDocker skips the test when no Docker daemon answers, or fails it when CI is set.
func RequireDocker(t *testing.T) {
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
	harness.Skip(t, fmt.Sprintf("no Docker daemon answers (scripts/start-docker.sh starts one): %v", err))
}

// Require skips the test in -short mode (a compose test builds images and runs them) and
// otherwise needs a Docker daemon (RequireDocker).
func Require(t *testing.T) {
	t.Helper()
	harness.SkipShort(t, "builds images and runs them")
	RequireDocker(t)
}

// Env is what every compose test runs with: host ports Docker picks, an image tag of the
// run's own (VERSION=version: the images are built from this tree, and removed at the end
// without touching make images' tags), throwaway secrets, and the builder image.
func Env(t *testing.T, version string) map[string]string {
	return map[string]string{
		"USERS_HOST_PORT":    "0",
		"TASKS_HOST_PORT":    "0",
		"FRONTEND_HOST_PORT": "0",
		"VERSION":            version,
		"JWT_SECRET":         "e2e-only-signing-key-" + harness.RandomHex(t, 16),
		"AUTH_API_KEY":       "e2e-only-service-credential-" + harness.RandomHex(t, 16),
		"GO_IMAGE":           GoImage(),
	}
}

// GoImage is the build stage's image: $GO_IMAGE, else the local builder image when it exists
// (nothing to pull), else empty so the compose file's default applies.
func GoImage() string {
	if v := os.Getenv("GO_IMAGE"); v != "" {
		return v
	}
	if exec.Command("docker", "image", "inspect", BuilderImage).Run() == nil {
		return BuilderImage
	}
	return ""
}
