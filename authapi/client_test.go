package authapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeAuth answers verify calls with answer(token) as auth would, and counts them.
type fakeAuth struct {
	*httptest.Server
	calls atomic.Int64
}

// before, if given, sees the server before it starts (to set a ConnState hook).
func newFakeAuth(t *testing.T, answer func(token string) (status int, body string), before ...func(*http.Server)) *fakeAuth {
	t.Helper()
	f := &fakeAuth{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		var req VerifyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, body := answer(req.Token)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	for _, b := range before {
		b(f.Config)
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

// validFor answers every non-empty token as uid's.
func validFor(uid string) func(string) (int, string) {
	return func(token string) (int, string) {
		if token == "" {
			return http.StatusUnauthorized, `{"message":"Could not verify token."}`
		}
		return http.StatusOK, `{"message":"Valid token.","uid":"` + uid + `"}`
	}
}

// tokenExpiring is a JWT that expires at exp (signed with a key the fake auth never checks).
func tokenExpiring(t *testing.T, exp time.Time, subject string) string {
	t.Helper()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": subject, "uid": subject, "exp": exp.Unix(),
	}).SignedString([]byte("a test key, never a real one, 32+ bytes"))
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestAHungAuthIsUnavailableAndADeadline: a call to an auth that does not answer within
// Timeout fails as ErrUnavailable (callers answer 503) and as context.DeadlineExceeded (so
// a caller can tell a slow auth from a refused connection), within about Timeout.
func TestAHungAuthIsUnavailableAndADeadline(t *testing.T) {
	hung := make(chan struct{})
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hung }))
	defer auth.Close()
	defer close(hung)
	client := NewClient(Config{URL: auth.URL, Timeout: 100 * time.Millisecond})
	began := time.Now()
	_, err := client.VerifyToken(context.Background(), "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOiJ1In0.sig")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want both ErrUnavailable and context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the call took %s with a 100ms timeout", took)
	}
}

// TestTheCallerCancelsTheCall: a caller that goes away (its client hung up) ends its call to
// auth at once rather than after Timeout.
func TestTheCallerCancelsTheCall(t *testing.T) {
	hung := make(chan struct{})
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hung }))
	defer auth.Close()
	defer close(hung)
	client := NewClient(Config{URL: auth.URL, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	began := time.Now()
	_, err := client.VerifyToken(ctx, "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOiJ1In0.sig")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("the call took %s after its caller left at 50ms", took)
	}
}

// TestAnAnswerWithoutItsValueIsRefused: a 200 from whatever listens at auth's address that
// names no user (or no token, no hash) is not taken as a verification: a task stored under
// no owner would be seen by every user.
func TestAnAnswerWithoutItsValueIsRefused(t *testing.T) {
	for _, body := range []string{`{}`, `{"message":"Valid token.","uid":""}`, `{"message":"Valid token.","uid":null}`, `{"message":"Valid token."}`} {
		auth := newFakeAuth(t, func(string) (int, string) { return http.StatusOK, body })
		client := NewClient(Config{URL: auth.URL, Timeout: time.Second, VerifyCache: time.Minute, VerifyCacheEntries: 10})
		uid, err := client.VerifyToken(context.Background(), tokenExpiring(t, time.Now().Add(time.Hour), "u"))
		if !errors.Is(err, ErrUnavailable) || uid != "" {
			t.Errorf("answer %s: uid %q, err %v; want ErrUnavailable", body, uid, err)
		}
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	defer empty.Close()
	client := NewClient(Config{URL: empty.URL, Timeout: time.Second})
	if token, err := client.IssueToken(context.Background(), "pw", "hash", "u"); !errors.Is(err, ErrUnavailable) || token != "" {
		t.Errorf("IssueToken from {}: %q, %v; want ErrUnavailable", token, err)
	}
	if hash, err := client.HashPassword(context.Background(), "pw"); !errors.Is(err, ErrUnavailable) || hash != "" {
		t.Errorf("HashPassword from {}: %q, %v; want ErrUnavailable", hash, err)
	}
}

// TestAnUnsolicitedAnswerNeverReachesTheNextCaller: something at auth's address that
// answers each call twice must not shift the answers onto later callers (each would be
// taken as another user). Every call here gets the answer to its own token or an error.
func TestAnUnsolicitedAnswerNeverReachesTheNextCaller(t *testing.T) {
	serveRaw(t, func(conn net.Conn) {
		r := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			var body VerifyRequest
			json.NewDecoder(req.Body).Decode(&body)
			uid := jwtSubject(body.Token)
			for _, answer := range []string{uid, "stale-" + uid} { // the second one unasked
				payload := `{"message":"Valid token.","uid":"` + answer + `"}`
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload)
			}
		}
	}, func(url string) {
		client := NewClient(Config{URL: url, Timeout: 2 * time.Second})
		wrong := 0
		for i := range 50 {
			want := fmt.Sprintf("user-%d", i)
			uid, err := client.VerifyToken(context.Background(), tokenExpiring(t, time.Now().Add(time.Hour), want))
			if err == nil && uid != want {
				wrong++
				t.Errorf("call %d for %s was answered %s", i, want, uid)
			}
			time.Sleep(time.Millisecond) // let the unasked answer arrive on the idle connection
		}
		if wrong > 0 {
			t.Fatalf("%d of 50 calls got another caller's answer", wrong)
		}
	})
}

// jwtSubject reads a token's sub without checking it (the fake auth's own shortcut).
func jwtSubject(token string) string {
	claims := jwt.RegisteredClaims{}
	jwt.NewParser().ParseUnverified(token, &claims)
	return claims.Subject
}

// TestACallLostByAClosedConnectionIsSentAgain: a kept-alive connection that auth closes as
// the next call arrives on it (an auth pod stopping, an idle timeout) costs that call
// nothing: it is sent again on a new connection.
func TestACallLostByAClosedConnectionIsSentAgain(t *testing.T) {
	// Each connection answers its first call and closes, unanswered, at its second.
	serveRaw(t, func(conn net.Conn) {
		r := bufio.NewReader(conn)
		for n := 0; ; n++ {
			req, err := http.ReadRequest(r)
			if err != nil || n == 1 {
				return
			}
			req.Body.Close()
			payload := `{"message":"Valid token.","uid":"u"}`
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload)
		}
	}, func(url string) {
		client := NewClient(Config{URL: url, Timeout: 2 * time.Second})
		for i := range 10 {
			if _, err := client.VerifyToken(context.Background(), "t"); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
}

// serveRaw runs serve on each connection to a loopback listener while use runs with its URL.
func serveRaw(t *testing.T, serve func(net.Conn), use func(url string)) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				serve(conn)
			}()
		}
	}()
	use("http://" + l.Addr().String())
}

// TestConnectionsAreRenewed: a caller that keeps calling does not stay on the connections
// it opened first, so a new auth replica gets its share: once renewal is due, the idle
// connection is closed (auth's idle timeout alone would keep it for 30 s).
func TestConnectionsAreRenewed(t *testing.T) {
	var closed atomic.Int64
	auth := newFakeAuth(t, validFor("u"), func(s *http.Server) {
		s.ConnState = func(c net.Conn, state http.ConnState) {
			if state == http.StateClosed {
				closed.Add(1)
			}
		}
	})
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second})
	for range 3 {
		if _, err := client.VerifyToken(context.Background(), "t"); err != nil {
			t.Fatal(err)
		}
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("%d connections closed before renewal was due", n)
	}
	client.lastRenew.Store(time.Now().Add(-renewEvery).UnixNano()) // due now
	if _, err := client.VerifyToken(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); closed.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no connection was closed once renewal was due")
		}
	}
}

// TestReadinessFollowsTheKey: a service is not ready while auth refuses its AUTH_API_KEY,
// also after it was ready, and is ready again once auth accepts it.
func TestReadinessFollowsTheKey(t *testing.T) {
	var refuse atomic.Bool
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if refuse.Load() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="auth"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"This service is not allowed to call auth."}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Could not verify token."}`)
	}))
	defer auth.Close()
	client := NewClient(Config{URL: auth.URL, APIKey: "k", Timeout: time.Second})
	ctx := context.Background()
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("Ready with the key accepted: %v", err)
	}
	refuse.Store(true)
	if _, err := client.VerifyToken(ctx, "t"); !errors.Is(err, ErrKeyRefused) {
		t.Fatalf("VerifyToken with the key refused: %v, want ErrKeyRefused", err)
	}
	if err := client.Ready(ctx); !errors.Is(err, ErrKeyRefused) {
		t.Fatalf("Ready after auth refused the key: %v, want ErrKeyRefused", err)
	}
	refuse.Store(false)
	if err := client.Ready(ctx); err != nil || !client.Answered() {
		t.Fatalf("Ready once the key is accepted again: %v (answered %v)", err, client.Answered())
	}
}
