package authapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/platform/requestid"
)

// countingAuth is an auth stand-in that verifies every token and counts the connections its
// callers open.
func countingAuth(t *testing.T, answer http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var opened atomic.Int32
	auth := httptest.NewUnstartedServer(answer)
	auth.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			opened.Add(1)
		}
	}
	auth.Start()
	t.Cleanup(auth.Close)
	return auth, &opened
}

func verified(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"message":"Valid token.","uid":"u1"}`))
}

const aToken = "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOiJ1MSJ9.sig"

// verifyTimes makes n calls one after another, each of which must verify aToken as u1, with
// between() after each.
func verifyTimes(t *testing.T, client *Client, n int, between func()) {
	t.Helper()
	for i := range n {
		if uid, err := client.VerifyToken(context.Background(), aToken); err != nil || uid != "u1" {
			t.Fatalf("call %d: %q, %v", i, uid, err)
		}
		between()
	}
}

func nothing() {}

// TestCallsShareOneConnection: calls one after the other go over one kept-alive connection.
func TestCallsShareOneConnection(t *testing.T) {
	auth, opened := countingAuth(t, verified)
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second})
	verifyTimes(t, client, 20, nothing)
	if n := opened.Load(); n != 1 {
		t.Fatalf("20 calls opened %d connections, want 1", n)
	}
}

// TestACallLostByAClosedConnectionIsSentAgain: when auth has closed a kept-alive connection
// (a pod stopping, an idle timeout), the call sent on it is sent again on a new connection
// instead of failing.
func TestACallLostByAClosedConnectionIsSentAgain(t *testing.T) {
	auth, opened := countingAuth(t, verified)
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second})
	verifyTimes(t, client, 5, auth.CloseClientConnections)
	if n := opened.Load(); n != 5 {
		t.Fatalf("5 calls, each after the last connection was closed, opened %d connections, want 5", n)
	}
}

// TestAConnectionAuthClosesIsNotKept: an answer with "Connection: close" (auth draining) ends
// that connection: the next call opens a new one.
func TestAConnectionAuthClosesIsNotKept(t *testing.T) {
	auth, opened := countingAuth(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		verified(w, r)
	})
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second})
	verifyTimes(t, client, 3, nothing)
	if n := opened.Load(); n != 3 {
		t.Fatalf("3 calls answered with Connection: close opened %d connections, want 3", n)
	}
}

// TestAnAnswerWithoutLengthIsReadWhole: an answer whose length is not announced (chunked) is
// read to its end, and its connection is not used again.
func TestAnAnswerWithoutLengthIsReadWhole(t *testing.T) {
	auth, opened := countingAuth(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"Valid token.",`))
		w.(http.Flusher).Flush() // chunked from here
		w.Write([]byte(`"uid":"u1"}`))
	})
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second})
	verifyTimes(t, client, 2, nothing)
	if n := opened.Load(); n != 2 {
		t.Fatalf("2 chunked answers: %d connections, want 2", n)
	}
}

// TestAnEndlessAnswerIsRefused: something at auth's address that sends headers without end
// costs the caller a bounded read and an ErrUnavailable, not its memory.
func TestAnEndlessAnswerIsRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("HTTP/1.1 200 OK\r\n"))
		line := []byte("X-Filler: " + strings.Repeat("x", 1000) + "\r\n")
		for range 10_000 { // 10 MB, bounded
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}()
	client := NewClient(Config{URL: "http://" + l.Addr().String(), Timeout: 5 * time.Second})
	_, err = client.VerifyToken(context.Background(), aToken)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errAnswerTooLarge) {
		t.Fatalf("err = %v, want ErrUnavailable for an answer too large", err)
	}
}

// TestACallCarriesItsHeadersAndBody: auth receives the call as net/http reads it: the API key,
// the request id, JSON, and the token in the body.
func TestACallCarriesItsHeadersAndBody(t *testing.T) {
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	auth, _ := countingAuth(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(body)
		verified(w, r)
	})
	client := NewClient(Config{URL: auth.URL, APIKey: "a-key-of-at-least-32-bytes-for-auth", Timeout: 2 * time.Second})
	if _, err := client.VerifyToken(requestid.With(context.Background(), "req-42"), aToken); err != nil {
		t.Fatal(err)
	}
	r, body := <-got, <-bodies
	if r.Method != http.MethodPost || r.URL.Path != PathVerifyToken || r.Host != strings.TrimPrefix(auth.URL, "http://") {
		t.Errorf("request %s %s to %s", r.Method, r.URL, r.Host)
	}
	for name, want := range map[string]string{"Authorization": "Bearer a-key-of-at-least-32-bytes-for-auth",
		"X-Request-Id": "req-42", "Content-Type": "application/json", "Content-Length": strconv.Itoa(len(body))} {
		if v := r.Header.Get(name); v != want && !(name == "Content-Length" && r.ContentLength == int64(len(body))) {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
	if want := `{"token":"` + aToken + `"}`; body != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

// TestConnectionsAreRenewed: a connection is used for calls for recycleEvery at most, busy or
// idle, so that new ones spread over auth's replicas.
func TestConnectionsAreRenewed(t *testing.T) {
	auth, opened := countingAuth(t, verified)
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second})
	client.conns.maxAge = 100 * time.Millisecond
	verifyTimes(t, client, 3, func() { time.Sleep(150 * time.Millisecond) }) // idle longer than maxAge
	if n := opened.Load(); n != 3 {
		t.Fatalf("3 calls 150 ms apart opened %d connections, want 3", n)
	}
	began := time.Now()
	for time.Since(began) < 350*time.Millisecond { // busy: one call after another
		if _, err := client.VerifyToken(context.Background(), aToken); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n < 5 || n > 9 {
		t.Fatalf("350 ms of calls one after another opened %d more connections, want about 4", n-3)
	}
}

// TestWritePostIsWhatNetHTTPReads: the call written by hand reads back with net/http's own
// request reader as the same POST; a header value with a line break is not written by hand
// (Request.Write, the fallback, refuses it), so no header can be smuggled into a call.
func TestWritePostIsWhatNetHTTPReads(t *testing.T) {
	target := &url.URL{Scheme: "http", Host: "auth:80", Path: PathVerifyToken}
	payload := []byte(`{"token":"` + aToken + `"}`)
	header := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer k"}, "X-Request-Id": {"req-1"}}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if !writePost(w, target, header, payload) {
		t.Fatal("writePost refused plain headers")
	}
	w.Flush()
	r, err := http.ReadRequest(bufio.NewReader(&out))
	if err != nil {
		t.Fatalf("net/http cannot read %q: %v", out.String(), err)
	}
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.RequestURI != PathVerifyToken || r.Host != "auth:80" || r.ContentLength != int64(len(payload)) || string(body) != string(payload) {
		t.Errorf("read back %s %s host %s length %d body %s", r.Method, r.RequestURI, r.Host, r.ContentLength, body)
	}
	for name, values := range header {
		if got := r.Header[name]; len(got) != 1 || got[0] != values[0] {
			t.Errorf("%s: %q, want %q", name, got, values)
		}
	}
	for _, bad := range []string{"req\r\nX-Admin: 1", "a\nb", "nul\x00"} {
		w.Reset(&out)
		header[requestid.Header] = []string{bad}
		if writePost(w, target, header, payload) || w.Buffered() > 0 {
			t.Errorf("writePost wrote a header value %q", bad)
		}
	}
}
