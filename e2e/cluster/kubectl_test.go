//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// kubectl runs one kubectl command and returns its combined output. Every call has a
// deadline: a cluster that stops answering fails the test instead of hanging it.
func kubectl(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("no answer within %s", timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// mustKubectl is kubectl that fails the test on error.
func mustKubectl(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := kubectl(timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitArg is a kubectl --timeout flag a little shorter than the call's own deadline,
// so that kubectl reports what it was waiting for before it is killed.
func waitArg(timeout time.Duration) string {
	return "--timeout=" + (timeout - 5*time.Second).String()
}

// names lists the objects "kubectl apply <how> path" creates (how: -f for a folder of
// manifests, -k for a kustomization), as kind/name.
func names(t testing.TB, how, path string) []string {
	t.Helper()
	return strings.Fields(mustKubectl(t, 30*time.Second, "apply", "--dry-run=client", how, path, "-o", "name"))
}

// deployments picks the Deployments out of names.
func deployments(objects []string) []string {
	var out []string
	for _, o := range objects {
		if strings.HasPrefix(o, "deployment.apps/") {
			out = append(out, o)
		}
	}
	return out
}

// podNames lists the pods with the label selector, as pod/name.
func podNames(t testing.TB, selector string) []string {
	t.Helper()
	return strings.Fields(mustKubectl(t, 30*time.Second, "get", "pods", "-l", selector, "-o", "name"))
}

// forward is a running "kubectl port-forward" to a Service, on a free loopback port.
type forward struct {
	URL    string
	target string // svc/<name>
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lineLog
}

// portForward starts kubectl port-forward to port of the Service and stops it when the
// test ends. kubectl picks one pod behind the Service and forwards to that pod only: a
// forward does not follow a rollout (start it again afterwards).
func portForward(t testing.TB, service string, port int) *forward {
	t.Helper()
	f := &forward{target: "svc/" + service, port: port}
	t.Cleanup(f.stop)
	if err := f.start(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return f
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> \d+`)

// start (re)runs kubectl port-forward and waits up to timeout for it to listen.
func (f *forward) start(timeout time.Duration) error {
	f.stop()
	ready := make(chan string, 1)
	f.out = &lineLog{onLine: func(line string) {
		if m := forwarding.FindStringSubmatch(line); m != nil {
			select {
			case ready <- "http://127.0.0.1:" + m[1]:
			default:
			}
		}
	}}
	f.cmd = exec.Command("kubectl", "port-forward", "--address", "127.0.0.1",
		"--pod-running-timeout="+timeout.String(), f.target, fmt.Sprintf(":%d", f.port))
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	if err := f.cmd.Start(); err != nil {
		return fmt.Errorf("kubectl port-forward %s: %v", f.target, err)
	}
	f.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(f.cmd, f.exited)
	select {
	case url := <-ready:
		f.URL = url
		return nil
	case <-f.exited:
		return fmt.Errorf("kubectl port-forward %s :%d exited: %s", f.target, f.port, f.out.tail())
	case <-time.After(timeout):
		f.stop()
		return fmt.Errorf("kubectl port-forward %s :%d: not forwarding after %s: %s", f.target, f.port, timeout, f.out.tail())
	}
}

// alive reports whether kubectl still runs; it exits when its pod goes away.
func (f *forward) alive() bool {
	if f.cmd == nil {
		return false
	}
	select {
	case <-f.exited:
		return false
	default:
		return true
	}
}

func (f *forward) stop() {
	if f.cmd == nil {
		return
	}
	f.cmd.Process.Kill()
	<-f.exited
	f.cmd = nil
}

// lineLog is an io.Writer that hands each complete line to onLine and keeps the last few.
type lineLog struct {
	onLine  func(string)
	mu      sync.Mutex
	partial strings.Builder
	last    []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial.Write(p)
	for {
		text := l.partial.String()
		line, rest, found := strings.Cut(text, "\n")
		if !found {
			return len(p), nil
		}
		l.partial.Reset()
		l.partial.WriteString(rest)
		if l.last = append(l.last, line); len(l.last) > 10 {
			l.last = l.last[1:]
		}
		l.onLine(line)
	}
}

func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(append(l.last, l.partial.String()), " | ")
}
