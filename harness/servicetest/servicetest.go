// Package servicetest starts a service's run function in-process, the way main does, for
// tests that drive it over real HTTP on loopback.
package servicetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

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

// Start runs run with cfg, as main does with the config it read, and environ as the process
// environment the discovery view shows (none when not given); it reads the bound address from the "listening" log line, and waits for
// /healthz. cfg sets the ports: 0 for any free one. The service is stopped at the end of the
// test. Nothing is read from or set in the process environment: tests may run in parallel.
func Start[C service.Config](t *testing.T, name string, run service.RunFunc[C], cfg C, environ ...string) *Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cancel: cancel, done: make(chan error, 1)}
	reader, writer := io.Pipe()
	addr := make(chan string, 1)
	go s.readLogs(reader, addr)
	go func() {
		err := run(ctx, cfg, environ, writer)
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

// Defaults fills cfg as envconfig does from an environment that sets nothing: the settings a
// service runs with unless told otherwise, for its tests to start from (a developer's shell
// may well set PORT). It empties the process environment while it reads, and restores it, so
// it belongs in TestMain, before m.Run: no test runs yet, and tests may then run in parallel.
func Defaults(cfg any) error {
	saved := os.Environ()
	os.Clearenv()
	defer func() {
		for _, kv := range saved {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
	}()
	return envconfig.Process("", cfg)
}

// Main is a service's TestMain: it reads the service's defaults into defaults (Defaults), then
// runs the tests with run: (*testing.M).Run, or pgtest.RunTests when they use PostgreSQL.
func Main(m *testing.M, defaults any, run func(*testing.M) int) {
	if err := Defaults(defaults); err != nil {
		fmt.Fprintln(os.Stderr, "servicetest: reading the defaults:", err)
		os.Exit(2)
	}
	os.Exit(run(m))
}
