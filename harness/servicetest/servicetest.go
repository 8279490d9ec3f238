// Package servicetest starts a service's run function in-process, the way main does, for
// tests that drive it over real HTTP on loopback.
package servicetest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/platform/service"
)

// Service is a running service.
type Service struct {
	URL string // e.g. http://127.0.0.1:41234

	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	logs   strings.Builder
}

// Start sets env (with t.Setenv, so tests using it cannot run in parallel), runs run with
// PORT=0 and METRICS_PORT=0 (unless env sets them), reads the bound address from its "listening" log line, and waits for /healthz.
// The service is stopped at the end of the test.
func Start(t *testing.T, name string, run service.RunFunc, env map[string]string) *Service {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	// Any free ports, and no delay at stop, unless the test says otherwise.
	for k, v := range map[string]string{"PORT": "0", "METRICS_PORT": "0", "SHUTDOWN_DELAY": "0s"} {
		if _, ok := env[k]; !ok {
			t.Setenv(k, v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cancel: cancel, done: make(chan error, 1)}
	reader, writer := io.Pipe()
	addr := make(chan string, 1)
	go s.readLogs(reader, addr)
	go func() {
		err := run(ctx, []string{name}, writer)
		writer.Close()
		s.done <- err
	}()
	t.Cleanup(func() { s.Stop() })

	select {
	case a := <-addr:
		s.URL = "http://127.0.0.1" + a[strings.LastIndex(a, ":"):]
	case err := <-s.done:
		t.Fatalf("%s exited at start: %v\nlogs:\n%s", name, err, s.Logs())
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not log its address within 10s\nlogs:\n%s", name, s.Logs())
	}
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /healthz: %v %v", name, resp, err)
	}
	resp.Body.Close()
	return s
}

func (s *Service) readLogs(r io.Reader, addr chan<- string) {
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		line := scanner.Text()
		s.mu.Lock()
		s.logs.WriteString(line + "\n")
		s.mu.Unlock()
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "listening" {
			addr <- entry.Addr
		}
	}
	io.Copy(io.Discard, r)
}

// WaitReady waits until /readyz answers 200 (up to 5 s), or fails the test.
func (s *Service) WaitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz did not answer 200 within 5s: %v\n%s", s.URL, err, s.Logs())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Logs returns everything the service logged so far.
func (s *Service) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Stop cancels the service's context, as SIGTERM does, and returns run's error.
func (s *Service) Stop() error {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(30 * time.Second):
		return context.DeadlineExceeded
	}
}
