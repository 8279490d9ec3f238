package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
var services = []string{"auth", "users", "tasks"}

var build struct {
	once sync.Once
	dir  string
	err  error
}

// binary returns the path of a service binary, built once per test run the way
// the images build it (static, trimmed), from the working tree.
func binary(t *testing.T, svc string) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "kub-demo-k8s-bin-")
		if build.err != nil {
			return
		}
		for _, s := range services {
			cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(build.dir, s), "./services/"+s+"/cmd/"+s)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				build.err = fmt.Errorf("go build ./services/%s/cmd/%s: %v\n%s", s, s, err, out)
				return
			}
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return filepath.Join(build.dir, svc)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

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

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// process is a running service binary.
type process struct {
	Name string
	Port int
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs bin with exactly env (nothing inherited from the test process), waits
// until GET /healthz on port answers 200, and stops it (SIGTERM) at cleanup.
func start(t *testing.T, name, bin string, env []string, port int) *process {
	t.Helper()
	p := &process{Name: name, Port: port, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs.String())
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was healthy: %v\nenv: %q\nlogs:\n%s", name, p.err, env, p.logs.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy on %s after 10s (last error %v)\nlogs:\n%s", name, url, err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as the kubelet does, and waits; SIGKILL after 10s.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", p.Name, p.err)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s: still running 10s after SIGTERM, killed", p.Name)
	}
}
