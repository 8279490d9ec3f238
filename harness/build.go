// Package harness runs kub-demo's real services for tests and benchmarks: it builds the
// binaries, starts each as a process on loopback (PORT=0 and METRICS_PORT=0: it reads the
// addresses the service bound from its "listening" log lines), drives the public API over
// HTTP as Postman or curl would, and stops what it started. The end-to-end tests (e2e), the
// benchmarks (bench) and the smoke command's integration test all use it.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Binaries are the paths of the built services.
type Binaries struct {
	Auth, Users, Tasks string
}

// Services are the packages of the three services, from the repository root.
var Services = []string{"./services/auth/cmd/auth", "./services/users/cmd/users", "./services/tasks/cmd/tasks"}

// BuildOptions say how to build.
type BuildOptions struct {
	// Tags, when not empty, is passed as -tags.
	Tags string
	// Release builds as make build does: -trimpath, no symbols.
	Release bool
}

// BuildPackages compiles each package (a path from the repository root, such as
// ./cmd/smoke) into dir, and returns the binaries by their base name (smoke, auth…).
func BuildPackages(dir string, opts BuildOptions, pkgs ...string) (map[string]string, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bins := make(map[string]string, len(pkgs))
	for _, pkg := range pkgs {
		name := filepath.Base(pkg)
		out := filepath.Join(dir, name)
		args := []string{"build", "-o", out}
		if opts.Release {
			args = append(args, "-trimpath", "-ldflags=-s -w")
		}
		if opts.Tags != "" {
			args = append(args, "-tags", opts.Tags)
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if output, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, output)
		}
		bins[name] = out
	}
	return bins, nil
}

// BuildServices compiles the three services into dir.
func BuildServices(dir string, opts BuildOptions) (Binaries, error) {
	bins, err := BuildPackages(dir, opts, Services...)
	return Binaries{Auth: bins["auth"], Users: bins["users"], Tasks: bins["tasks"]}, err
}

var (
	buildOnce sync.Once
	buildDir  string
	built     Binaries
	buildErr  error
)

// Build compiles the three services once per test process, into a folder RunTests removes.
func Build(t testing.TB) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "kub-demo-bin-"); buildErr == nil {
			built, buildErr = BuildServices(buildDir, BuildOptions{})
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// Frontend is the package of the web UI, which Build leaves out (few tests need it).
const Frontend = "./services/frontend/cmd/frontend"

var (
	frontendOnce sync.Once
	frontendBin  string
	frontendErr  error
)

// BuildFrontend compiles the frontend once per test process, next to Build's three.
func BuildFrontend(t testing.TB) string {
	t.Helper()
	Build(t)
	frontendOnce.Do(func() {
		var bins map[string]string
		bins, frontendErr = BuildPackages(buildDir, BuildOptions{}, Frontend)
		frontendBin = bins["frontend"]
	})
	if frontendErr != nil {
		t.Fatal(frontendErr)
	}
	return frontendBin
}

// RunTests runs the package's tests and removes what Build made: a package that uses Build
// ends its TestMain with os.Exit(harness.RunTests(m)).
func RunTests(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// RepoRoot is the folder holding go.work, above the working folder.
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
		if parent == dir || strings.TrimSpace(parent) == "" {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
		dir = parent
	}
}
