// Package servicetest starts a service's run function in-process, the way main does, for
// tests that drive it over real HTTP on loopback.
package servicetest

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
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

// Start runs run with cfg, as main does with the config it read, and no environment for the
// discovery view; it reads the bound address from the "listening" log line, and waits for
// /healthz. cfg sets the ports: 0 for any free one. The service is stopped at the end of the
// test. Nothing is read from or set in the process environment: tests may run in parallel.
func Start[C service.Config](t *testing.T, name string, run service.RunFunc[C], cfg C) *Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cancel: cancel, done: make(chan error, 1)}
	reader, writer := io.Pipe()
	addr := make(chan string, 1)
	go s.readLogs(reader, addr)
	go func() {
		err := run(ctx, cfg, nil, writer)
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

// Defaults returns what envconfig reads into a C from an environment that sets nothing: the
// settings a service runs with unless told otherwise, for tests to start from. The process
// environment is not a test's to clear (tests run in parallel, and a developer's shell may set
// PORT), so the test binary is run again, with an empty environment, to read them: the
// running test again, which calls Defaults too and, in that process, writes what it read to
// a file and exits. So a test calls Defaults before anything else (t.Parallel aside): the
// child runs it up to there. The answer is kept for the other tests of the binary.
func Defaults[C any](t testing.TB) C {
	t.Helper()
	var cfg C
	if out := os.Getenv(defaultsFileEnv); out != "" { // the child
		if err := envconfig.Process("", &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "servicetest.Defaults:", err)
			os.Exit(2)
		}
		f, err := os.Create(out)
		if err == nil {
			err = gob.NewEncoder(f).Encode(&cfg)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "servicetest.Defaults:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	typ := reflect.TypeFor[C]()
	if raw, ok := defaults.Load(typ); ok {
		if err := gob.NewDecoder(strings.NewReader(raw.(string))).Decode(&cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	out := filepath.Join(t.TempDir(), "defaults.gob")
	var run []string
	for _, name := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(name)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(run, "/"), "-test.count=1")
	cmd.Env = []string{defaultsFileEnv + "=" + out}
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reading the defaults in %s with no environment: %v\n%s", os.Args[0], err, output)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the defaults were not written: %v", err)
	}
	if err := gob.NewDecoder(strings.NewReader(string(raw))).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	defaults.Store(typ, string(raw))
	return cfg
}

// defaultsFileEnv tells the child of Defaults where to write what it read.
const defaultsFileEnv = "SERVICETEST_DEFAULTS_FILE"

// defaults are what Defaults read, as gob, by type.
var defaults sync.Map
