package kubernetes

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kub-demo/kub-demo/harness"
)

// repoRoot is the repository root (this package lives in e2e/kubernetes).
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

// services maps each image to the binary built from the same main package.
var services = []string{"auth", "users", "tasks", "frontend"}

// binary returns the path of a service binary, built once per test run from the
// working tree by harness.Build (the same main packages the images build).
func binary(t *testing.T, svc string) string {
	t.Helper()
	if svc == "frontend" {
		return harness.BuildFrontend(t)
	}
	b := harness.Build(t)
	return map[string]string{"auth": b.Auth, "users": b.Users, "tasks": b.Tasks}[svc]
}

func TestMain(m *testing.M) { os.Exit(harness.RunTests(m)) }

// envVar is one line of "<binary> -env": NAME<TAB>default<TAB>description.
type envVar struct {
	Name, Default, Description string
}

var envCache sync.Map // svc -> map[string]envVar

// envOf returns the variables a service reads, as the binary itself reports them.
func envOf(t *testing.T, svc string) map[string]envVar {
	t.Helper()
	if v, ok := envCache.Load(svc); ok {
		return v.(map[string]envVar)
	}
	cmd := exec.Command(binary(t, svc), "-env")
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -env: %v", svc, err)
	}
	vars := map[string]envVar{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) < 2 {
			t.Fatalf("%s -env: line %q is not NAME<TAB>default<TAB>description", svc, sc.Text())
		}
		v := envVar{Name: f[0], Default: f[1]}
		if len(f) == 3 {
			v.Description = f[2]
		}
		vars[v.Name] = v
	}
	if len(vars) == 0 {
		t.Fatalf("%s -env printed nothing", svc)
	}
	envCache.Store(svc, vars)
	return vars
}

// start runs a container's binary with exactly env (which sets PORT=port; nothing is
// inherited from the test process), waits until GET /healthz answers 200, and stops
// it with SIGTERM at cleanup; its logs are printed when the test fails.
func start(t *testing.T, name, bin string, env []string) *harness.Process {
	t.Helper()
	p := harness.Start(t, bin, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.Logs())
		}
	})
	return p
}
