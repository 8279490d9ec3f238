package httpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/platform/metrics"
)

// running is a Run on loopback: its public and metrics addresses, and its result.
type running struct {
	public, metrics string
	cancel          context.CancelFunc
	done            chan error
	probes          *Probes
}

// logAddrs is a log destination that hands over the addresses Run logs.
type logAddrs struct {
	mu    sync.Mutex
	lines []string
	found chan struct{}
}

func (l *logAddrs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	if strings.Contains(string(p), `"msg":"listening"`) {
		close(l.found)
	}
	return len(p), nil
}

func (l *logAddrs) addr(msg string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		var entry struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == msg {
			return "127.0.0.1" + entry.Addr[strings.LastIndex(entry.Addr, ":"):]
		}
	}
	return ""
}

// serve runs handler with opts (ports 0) until the test ends.
func serve(t *testing.T, handler http.Handler, opts Options) *running {
	t.Helper()
	logs := &logAddrs{found: make(chan struct{})}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	if opts.Probes == nil {
		opts.Probes = NewProbes(log)
	}
	m := metrics.New()
	router := Router(log, opts.Probes, m)
	for _, path := range []string{"/x", "/slow", "/anything"} {
		router.Handle(path, handler)
	}
	opts.Handler, opts.Metrics = router, m.Handler()
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 64
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), probes: opts.Probes}
	go func() { r.done <- Run(ctx, log, opts) }()
	select {
	case <-logs.found:
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not listen")
	}
	r.public, r.metrics = logs.addr("listening"), logs.addr("metrics listening")
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop")
		}
	})
	return r
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"message":"ok"}`)
})

// rawRequest writes request on a new connection and returns the status line and body.
func rawRequest(t *testing.T, addr, request string) (status string, body string) {
	t.Helper()
	return rawRequestFrom(t, "127.0.0.1", addr, request)
}

// rawRequestFrom is rawRequest from the loopback address local.
func rawRequestFrom(t *testing.T, local, addr, request string) (status string, body string) {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s with Content-Type %q: %q", resp.Status, ct, raw)
	}
	var m struct{ Message string }
	if err := json.Unmarshal(raw, &m); err != nil || m.Message == "" {
		t.Fatalf("%s: body %q is not JSON with a message", resp.Status, raw)
	}
	return resp.Status, m.Message
}

func TestMetricsAreOnTheirOwnPortOnly(t *testing.T) {
	r := serve(t, ok, Options{})
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "go_goroutines") {
		t.Fatalf("metrics port: %s", resp.Status)
	}
	if status, _ := rawRequest(t, r.public, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(status, "404") {
		t.Fatalf("public /metrics: %s, want 404", status)
	}
	if status, _ := rawRequest(t, r.metrics, "GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(status, "404") {
		t.Fatalf("metrics port /tasks: %s, want 404", status)
	}
}

func TestUnreadableRequestsGetJSONErrors(t *testing.T) {
	r := serve(t, ok, Options{})
	huge := "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("<", 180_000) + "\r\n\r\n"
	if status, message := rawRequest(t, r.public, huge); !strings.HasPrefix(status, "431") || !strings.Contains(message, "32 KiB") {
		t.Fatalf("180 KB header: %s %q, want 431 naming the limit", status, message)
	}
	if status, _ := rawRequest(t, r.public, "GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n"); !strings.HasPrefix(status, "400") {
		t.Fatalf("malformed header: %s, want 400", status)
	}
}

// TestConnectionCap: past MaxConnections, the longest-idle kept-alive connection makes room
// for a new client; when every connection is busy, a new one gets a JSON 503 at once.
func TestConnectionCap(t *testing.T) {
	release, busy := make(chan struct{}), make(chan struct{}, 3)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			busy <- struct{}{}
			<-release
		}
		ok(w, r)
	})
	r := serve(t, slow, Options{MaxConnections: 3})
	defer close(release)

	// Three idle keep-alive connections fill the cap; a fourth client is still served.
	idle := make([]net.Conn, 3)
	for i := range idle {
		conn, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
			t.Fatal(err)
		}
		idle[i] = conn
	}
	if status, _ := rawRequest(t, r.public, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(status, "200") {
		t.Fatalf("a new client with the cap full of idle connections: %s, want 200", status)
	}

	// Three busy connections: a fourth is refused at once, with JSON. Each slow request is
	// sent once the one before is inside, so that none is the one refused; one may still be,
	// if an idle connection was not yet marked idle when it came: it is sent again.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		for tries := 0; ; tries++ {
			refused := make(chan int, 1)
			go func() {
				if resp, err := client.Get("http://" + r.public + "/slow"); err == nil {
					resp.Body.Close()
					refused <- resp.StatusCode
				}
			}()
			select {
			case <-busy:
			case status := <-refused:
				if status != http.StatusServiceUnavailable || tries == 10 {
					t.Fatalf("a slow request answered %d before it was let in", status)
				}
				continue
			case <-time.After(10 * time.Second):
				t.Fatal("a slow request neither got in nor was refused")
			}
			break
		}
	}
	start := time.Now()
	status, message := rawRequest(t, r.public, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasPrefix(status, "503") || !strings.Contains(message, "Too many connections") {
		t.Fatalf("with every connection busy: %s %q, want 503", status, message)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the refusal took %s", took)
	}
}

// TestDrainKeepsServingWhileNotReady: after the stop signal, /readyz answers 503 at once while
// requests are still answered (with Connection: close) for ShutdownDelay.
func TestDrainKeepsServingWhileNotReady(t *testing.T) {
	r := serve(t, ok, Options{ShutdownDelay: 3 * time.Second})
	r.cancel()
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := http.Get("http://" + r.public + "/readyz")
		if err != nil {
			t.Fatalf("during the delay: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 after the stop signal")
		}
	}
	resp, err := http.Get("http://" + r.public + "/anything")
	if err != nil || resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("a request during the delay: %v %v (close %v), want 200 with Connection: close", resp, err, resp != nil && resp.Close)
	}
	resp.Body.Close()
	if err := <-r.done; err != nil {
		t.Fatalf("Run after the drain: %v", err)
	}
	r.done <- nil // for the cleanup
}

func TestReadinessChecks(t *testing.T) {
	var failing error = errors.New("auth not reached")
	var mu sync.Mutex
	probes := NewProbes(slog.New(slog.NewTextHandler(io.Discard, nil)))
	probes.AddCheck("auth", func(context.Context) error { mu.Lock(); defer mu.Unlock(); return failing })
	r := serve(t, ok, Options{Probes: probes})
	if status, message := rawRequest(t, r.public, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(status, "503") || message != "not ready: auth" {
		t.Fatalf("/readyz with a failing check: %s %q", status, message)
	}
	mu.Lock()
	failing = nil
	mu.Unlock()
	// A failing answer is not kept: the next request is 200 (a starting service is ready at
	// once, not a recheckAfter later).
	if status, message := rawRequest(t, r.public, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(status, "200") {
		t.Fatalf("/readyz right after the check passes: %s %q", status, message)
	}
}

// TestReadyzFloodRunsTheChecksRarely: 40 concurrent /readyz requests against a check that
// takes 100 ms (a slow database ping) all get its answer, from a few runs of the check: one
// per recheckAfter when it passes, one at a time when it fails.
func TestReadyzFloodRunsTheChecksRarely(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		most   func(took time.Duration) int32
	}{
		{"passing", nil, http.StatusOK, func(took time.Duration) int32 { return int32(took/recheckAfter) + 2 }},
		{"failing", errors.New("database unreachable"), http.StatusServiceUnavailable, func(took time.Duration) int32 { return int32(took/(100*time.Millisecond)) + 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var runs atomic.Int32
			probes := NewProbes(slog.New(slog.NewTextHandler(io.Discard, nil)))
			probes.AddCheck("database", func(context.Context) error { runs.Add(1); time.Sleep(100 * time.Millisecond); return c.err })
			r := serve(t, ok, Options{Probes: probes})
			var wg sync.WaitGroup
			var answered atomic.Int32
			began := time.Now()
			for range 40 {
				wg.Go(func() {
					if resp, err := http.Get("http://" + r.public + "/readyz"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == c.status {
							answered.Add(1)
						}
					}
				})
			}
			wg.Wait()
			took := time.Since(began)
			if most := c.most(took); runs.Load() > most {
				t.Errorf("%d runs of the check for 40 requests in %s, want at most %d", runs.Load(), took, most)
			}
			if answered.Load() != 40 {
				t.Errorf("%d of 40 requests answered %d", answered.Load(), c.status)
			}
		})
	}
}

// TestSilentConnectionsMakeRoom: connections that send nothing hold their places only until
// a new client needs one and they have been silent for a second; a refused client can read
// its JSON 503 whole.
func TestSilentConnectionsMakeRoom(t *testing.T) {
	r := serve(t, ok, Options{MaxConnections: 3})
	for range 3 {
		conn, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	// Within the grace, the silent ones keep their places: a new client is refused, readably.
	resp, err := http.Get("http://" + r.public + "/x")
	if err != nil {
		t.Fatalf("a refused client could not read its answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("a new client within the grace: %d, want 503", resp.StatusCode)
	}
	time.Sleep(silentGrace + 100*time.Millisecond)
	if status, _ := rawRequest(t, r.public, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(status, "200") {
		t.Fatalf("a new client after the grace: %s, want 200", status)
	}
}

// TestOversizedHeadersHoldNoPlace: net/http lingers on a connection it answered 431, but
// that connection no longer counts against the cap.
func TestOversizedHeadersHoldNoPlace(t *testing.T) {
	r := serve(t, ok, Options{MaxConnections: 2})
	for range 2 {
		conn, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 40<<10)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 431 {
			t.Fatalf("oversized headers: %v %v", resp, err)
		}
	}
	if status, _ := rawRequest(t, r.public, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(status, "200") {
		t.Fatalf("a client right after two 431s: %s, want 200", status)
	}
}

// slowBody opens a connection from local (a loopback address) and sends a POST's headers
// with Content-Length 100, then one byte of the body, and nothing more.
func slowBody(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	return conn
}

// TestLateBodiesMakeRoom: connections whose body stops coming fill the cap; within the grace
// a new client is refused, after it one of them is closed to let it in, and a body that
// comes whole is read as it was sent.
func TestLateBodiesMakeRoom(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, `{"message":"unread"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"message":%q}`, body)
	})
	r := serve(t, echo, Options{MaxConnections: 3})
	var late []net.Conn
	for i := range 3 { // one per address, none of them the new clients' (127.0.0.1)
		late = append(late, slowBody(t, fmt.Sprintf("127.0.0.%d", i+2), r.public))
	}
	time.Sleep(100 * time.Millisecond) // each read its headers and waits for its body
	if status, _ := rawRequest(t, r.public, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(status, "503") {
		t.Fatalf("a new client within the grace: %s, want 503", status)
	}
	time.Sleep(silentGrace + 100*time.Millisecond)
	for i := range 3 { // each new client closes one of the late bodies
		status, message := rawRequest(t, r.public, "POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 15\r\n\r\n{\"message\":\"a\"}")
		if !strings.HasPrefix(status, "200") || message != `{"message":"a"}` {
			t.Fatalf("new client %d after the grace: %s %q, want 200 and its body back", i, status, message)
		}
	}
	closed := 0
	for _, conn := range late {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode == 400 {
			closed++
		}
	}
	if closed != 3 {
		t.Fatalf("%d of the 3 late bodies were cut off, want 3", closed)
	}
}

// TestAnAddressHoldingEveryPlaceGivesOneUp: within the grace, when one address holds every
// place with bodies still coming, a client from another address is let in, in the place of
// one of them; a new connection from the same address is refused.
func TestAnAddressHoldingEveryPlaceGivesOneUp(t *testing.T) {
	r := serve(t, ok, Options{MaxConnections: 3})
	var held []net.Conn
	for range 3 {
		held = append(held, slowBody(t, "127.0.0.2", r.public))
	}
	time.Sleep(100 * time.Millisecond) // each read its headers and waits for its body
	get := func(local string) string {
		status, _ := rawRequestFrom(t, local, r.public, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		return status
	}
	if status := get("127.0.0.1"); !strings.HasPrefix(status, "200") {
		t.Fatalf("another address, with 127.0.0.2 holding every place within the grace: %s, want 200", status)
	}
	// It was not held back for it: it takes the free place again, and then, holding every
	// place, is refused a fourth.
	held = append(held, slowBody(t, "127.0.0.2", r.public))
	time.Sleep(100 * time.Millisecond)
	if status := get("127.0.0.2"); !strings.HasPrefix(status, "503") {
		t.Fatalf("127.0.0.2 again, holding every place: %s, want 503", status)
	}
	closed := 0
	for _, conn := range held { // a deadline long enough for a busy machine to read a close
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("%d of 127.0.0.2's 4 connections were closed, want 1", closed)
	}
}

// TestOneAddressHoldsAtMostItsShare: an address at MaxConnectionsPerClient has its new
// connections refused, or its own idle ones closed for them, while another address is let in.
func TestOneAddressHoldsAtMostItsShare(t *testing.T) {
	r := serve(t, ok, Options{MaxConnections: 8, MaxConnectionsPerClient: 2})
	for range 2 {
		slowBody(t, "127.0.0.2", r.public)
	}
	time.Sleep(100 * time.Millisecond)
	get := func(local string) string {
		status, _ := rawRequestFrom(t, local, r.public, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		return status
	}
	if status := get("127.0.0.2"); !strings.HasPrefix(status, "503") {
		t.Fatalf("a third connection from an address with 2 busy: %s, want 503", status)
	}
	if status := get("127.0.0.3"); !strings.HasPrefix(status, "200") {
		t.Fatalf("another address: %s, want 200", status)
	}
}

// TestStalledUploadDoesNotHoldTheDrain: a request whose body stopped coming when the stop
// signal comes is cut, and Run returns without error well before ShutdownTimeout.
func TestStalledUploadDoesNotHoldTheDrain(t *testing.T) {
	r := serve(t, ok, Options{ShutdownTimeout: 10 * time.Second})
	slowBody(t, "127.0.0.1", r.public)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for serve's cleanup
		if err != nil {
			t.Fatalf("Run with a stalled upload at the stop: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("the drain took %s", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestARequestTheServerHasNotReadIsNotSilence: on a busy machine the server may not read a
// request for longer than the grace, though the client sent it at once. That connection is
// not closed as silent to make room, and its address is not held back (penaltyFor): the
// newcomer is refused instead, as when every connection is busy.
func TestARequestTheServerHasNotReadIsNotSilence(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limiter := newConnLimiter(l, 1, 0)
	defer limiter.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	io.WriteString(client, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	first, err := limiter.Accept() // admitted, and then not read: the server is slow
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	time.Sleep(silentGrace + 100*time.Millisecond)

	go limiter.Accept() // refuses (or admits) the newcomer below; returns when l closes
	newcomer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer newcomer.Close()
	io.WriteString(newcomer, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	newcomer.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, _ := io.ReadAll(newcomer)
	if !strings.HasPrefix(string(answer), "HTTP/1.1 503") {
		t.Fatalf("the newcomer got %q, want the 503 refusal: the waiting request's place is not free", answer)
	}
	limiter.mu.Lock()
	gone, penalized := first.(*limitedConn).gone, limiter.penalizedLocked(time.Now(), "127.0.0.1")
	limiter.mu.Unlock()
	if gone || penalized {
		t.Fatalf("the connection whose request waited unread: closed %v, its address held back %v; want neither", gone, penalized)
	}
}
