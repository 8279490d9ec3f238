package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/services/frontend/internal/proxy"
)

var quiet = slog.New(slog.DiscardHandler)

// echo answers with what it was asked, and says which server it is.
func echo(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(requestid.Header, r.Header.Get(requestid.Header))
		json.NewEncoder(w).Encode(map[string]string{
			"server": name, "method": r.Method, "uri": r.RequestURI, "body": string(body),
			"auth": r.Header.Get("Authorization"), "id": r.Header.Get(requestid.Header),
		})
	})
}

func newProxy(t *testing.T, url string, opts proxy.Options) http.Handler {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = time.Second
	}
	transport := proxy.NewTransport(opts)
	t.Cleanup(transport.CloseIdleConnections)
	h, err := proxy.New(quiet, proxy.Upstream{Name: "tasks", URL: url}, transport)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// call sends a request through h and returns the status and the JSON body.
func call(t *testing.T, h http.Handler, method, target, body string) (int, map[string]string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer t0ken")
	req = req.WithContext(requestid.With(req.Context(), "req-1"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%s %s: %d, not a JSON object: %q", method, target, rec.Code, rec.Body)
	}
	return rec.Code, got, rec.Header()
}

func TestPrefixIsRemovedAndTheRestPassed(t *testing.T) {
	upstream := httptest.NewServer(echo("a"))
	defer upstream.Close()
	h := newProxy(t, upstream.URL, proxy.Options{})
	for target, want := range map[string]string{
		"/api/tasks":       "/tasks",
		"/api/Tasks/?x=1":  "/Tasks/?x=1",
		"/api/login":       "/login",
		"/api/tasks%2Fx/y": "/tasks/x/y",
	} {
		status, got, header := call(t, h, "POST", "http://frontend"+target, `{"title":"t"}`)
		if status != http.StatusOK || got["uri"] != want || got["method"] != "POST" || got["body"] != `{"title":"t"}` || got["auth"] != "Bearer t0ken" {
			t.Errorf("%s reached the upstream as %d %v, want %s", target, status, got, want)
		}
		if got["id"] != "req-1" {
			t.Errorf("the request id reached the upstream as %q", got["id"])
		}
		if ids := header.Values(requestid.Header); len(ids) != 0 {
			t.Errorf("the upstream's X-Request-ID was passed on (the frontend's middleware sets it): %q", ids)
		}
	}
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestUnreachableUpstreamIs502NamingTheHop(t *testing.T) {
	addr := freeAddr(t)
	status, got, _ := call(t, newProxy(t, "http://"+addr, proxy.Options{}), "GET", "http://frontend/api/tasks", "")
	want := "The frontend could not reach tasks (" + addr + "): connection refused"
	if status != http.StatusBadGateway || !strings.HasPrefix(got["message"], want) {
		t.Fatalf("got %d %q, want 502 %q…", status, got["message"], want)
	}
}

func TestUnknownNameIs502SayingSo(t *testing.T) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "tasks-service", IsNotFound: true}}
	}
	status, got, _ := call(t, newProxy(t, "http://tasks-service:8000", proxy.Options{Dial: dial}), "GET", "http://frontend/api/tasks", "")
	if status != http.StatusBadGateway || !strings.Contains(got["message"], "could not reach tasks (tasks-service:8000): the name tasks-service is not known") {
		t.Fatalf("got %d %q", status, got["message"])
	}
}

func TestSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer upstream.Close()
	defer close(release)
	status, got, _ := call(t, newProxy(t, upstream.URL, proxy.Options{Timeout: 100 * time.Millisecond}), "GET", "http://frontend/api/tasks", "")
	if status != http.StatusGatewayTimeout || !strings.Contains(got["message"], "could not reach tasks") || !strings.Contains(got["message"], "no answer in time") {
		t.Fatalf("got %d %q", status, got["message"])
	}
}

// The course's trap: nginx resolves tasks-service once, at start. Here the frontend may start
// first, and tasks later at the name it was given.
func TestUpstreamStartedAfterTheFrontend(t *testing.T) {
	addr := freeAddr(t)
	h := newProxy(t, "http://"+addr, proxy.Options{})
	if status, _, _ := call(t, h, "GET", "http://frontend/api/tasks", ""); status != http.StatusBadGateway {
		t.Fatalf("before tasks started: %d, want 502", status)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		harness.Skip(t, fmt.Sprintf("the port was taken meanwhile: %v", err))
	}
	upstream := httptest.NewUnstartedServer(echo("late"))
	upstream.Listener = l
	upstream.Start()
	defer upstream.Close()
	if status, got, _ := call(t, h, "GET", "http://frontend/api/tasks", ""); status != http.StatusOK || got["server"] != "late" {
		t.Fatalf("after tasks started: %d %v", status, got)
	}
}

// A re-created Service: the same name now leads to another server (another ClusterIP).
// Every new connection dials the name, never an address kept from before.
func TestReplacedUpstreamIsFoundAgainByName(t *testing.T) {
	first := httptest.NewServer(echo("first"))
	second := httptest.NewServer(echo("second"))
	defer second.Close()
	var mu sync.Mutex
	behind, dialed := first.Listener.Addr().String(), []string{}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		target := behind
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, target)
	}
	h := newProxy(t, "http://tasks-service:8000", proxy.Options{Dial: dial})
	if _, got, _ := call(t, h, "GET", "http://frontend/api/tasks", ""); got["server"] != "first" {
		t.Fatalf("first answer from %v", got)
	}
	// The old Service goes away (its connections with it), a new one takes the name.
	first.CloseClientConnections()
	first.Close()
	// Let the Transport's reader see the close, as it does between two clicks of a learner:
	// a request sent in the same instant may meet the reset (and get a 502 that says so).
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	behind = second.Listener.Addr().String()
	mu.Unlock()
	for _, method := range []string{"GET", "POST"} {
		if status, got, _ := call(t, h, method, "http://frontend/api/tasks", `{}`); status != http.StatusOK || got["server"] != "second" {
			t.Fatalf("%s after the replacement: %d %v", method, status, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, addr := range dialed {
		if addr != "tasks-service:8000" {
			t.Errorf("a connection was dialed to %q, not to the name", addr)
		}
	}
}

func TestBodyLargerThanTheCapIs413(t *testing.T) {
	upstream := httptest.NewServer(echo("a"))
	defer upstream.Close()
	status, got, _ := call(t, newProxy(t, upstream.URL, proxy.Options{}), "POST", "http://frontend/api/tasks", strings.Repeat("x", proxy.MaxBodyBytes+1))
	if status != http.StatusRequestEntityTooLarge || got["message"] == "" {
		t.Fatalf("got %d %v", status, got)
	}
}
