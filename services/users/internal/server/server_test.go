package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/filestore"
	"github.com/kub-demo/kub-demo/services/users/internal/throttle"
)

// fakeAuth stands in for the auth service, the boundary of this one.
type fakeAuth struct {
	hashPassword func(ctx context.Context, password string) (string, error)
	issueToken   func(ctx context.Context, password, hashedPassword, uid string) (string, error)
}

var _ accounts.Auth = (*fakeAuth)(nil)

func (f *fakeAuth) HashPassword(ctx context.Context, password string) (string, error) {
	return f.hashPassword(ctx, password)
}

func (f *fakeAuth) IssueToken(ctx context.Context, password, hashedPassword, uid string) (string, error) {
	return f.issueToken(ctx, password, hashedPassword, uid)
}

// workingAuth "hashes" reversibly and issues "token-for-<uid>" when the password matches.
func workingAuth() *fakeAuth {
	return &fakeAuth{
		hashPassword: func(_ context.Context, p string) (string, error) { return "hashed:" + p, nil },
		issueToken: func(_ context.Context, p, h, uid string) (string, error) {
			if h != "hashed:"+p {
				return "", authapi.ErrRejected
			}
			return "token-for-" + uid, nil
		},
	}
}

func downAuth() *fakeAuth {
	return &fakeAuth{
		hashPassword: func(context.Context, string) (string, error) { return "", authapi.ErrUnavailable },
		issueToken: func(context.Context, string, string, string) (string, error) {
			return "", authapi.ErrUnavailable
		},
	}
}

var demo = &accounts.Credentials{Email: "test@gmail.com", Password: "testers"}

func newUsers(t *testing.T, folder string, auth accounts.Auth, demo *accounts.Credentials) *httptest.Server {
	t.Helper()
	return httptest.NewServer(newHandler(t, folder, auth, demo, Throttles{}))
}

func newHandler(t *testing.T, folder string, auth accounts.Auth, demo *accounts.Credentials, limits Throttles) http.Handler {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	store, err := filestore.Open(folder, log, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return Routes(Deps{Log: log, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Accounts: accounts.New(store, auth, demo, log), Throttles: limits})
}

type answer struct {
	status int
	body   map[string]any
}

func post(t *testing.T, url, body string) answer {
	t.Helper()
	a, err := tryPost(url, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryPost is post for goroutines: it returns what went wrong instead of failing the test.
func tryPost(url, body string) (answer, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		return a, fmt.Errorf("POST %s: body %q is not a JSON object", url, raw)
	}
	return a, nil
}

const missing = "An email and password needs to be specified!"

// TestAPI: every row of the contract, each case on a users file of its own that holds only
// the demo user and new@example.com (password "secret").
func TestAPI(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantMessage      string // "" checks only that some message is there
		wantToken        bool
	}{
		{"demo user logs in without signup", "/login", `{"email":"test@gmail.com","password":"testers"}`, 200, "", true},
		{"signup", "/signup", `{"email":"other@example.com","password":"secret"}`, 201, "User created!", false},
		{"login", "/login", `{"email":"new@example.com","password":"secret"}`, 200, "", true},
		{"login ignores email case and spaces", "/login", `{"email":" New@Example.COM ","password":"secret"}`, 200, "", true},
		{"login at /Login/, as Express matched it", "/Login/", `{"email":"new@example.com","password":"secret"}`, 200, "", true},
		{"signup twice", "/signup", `{"email":"new@example.com","password":"other"}`, 409, "", false},
		{"signup twice, in another case", "/signup", `{"email":"NEW@example.com","password":"other"}`, 409, "", false},
		{"signup as the demo user", "/signup", `{"email":"test@gmail.com","password":"x"}`, 409, "", false},
		{"wrong password", "/login", `{"email":"new@example.com","password":"nope"}`, 401, "Invalid email or password.", false},
		{"unknown email", "/login", `{"email":"who@example.com","password":"secret"}`, 401, "Invalid email or password.", false},
		{"signup without email", "/signup", `{"password":"secret"}`, 422, missing, false},
		{"signup with blank email", "/signup", `{"email":"   ","password":"secret"}`, 422, missing, false},
		{"signup with empty password", "/signup", `{"email":"a@b.c","password":""}`, 422, missing, false},
		{"signup with spaces for password", "/signup", `{"email":"a@b.c","password":"  "}`, 422, missing, false},
		{"signup with empty body", "/signup", ``, 422, missing, false},
		{"login without password", "/login", `{"email":"a@b.c"}`, 422, missing, false},
		{"login with blank email", "/login", `{"email":"","password":"x"}`, 422, missing, false},
		{"password over 72 bytes", "/signup", `{"email":"a@b.c","password":"` + strings.Repeat("p", 73) + `"}`, 422, "", false},
		{"broken JSON", "/login", `{"email":"a@b.c",`, 400, "", false},
		{"email of the wrong type", "/signup", `{"email":1,"password":"x"}`, 400, "", false},
		{"body over 64 KiB", "/signup", `{"email":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "", false},
		{"unknown route", "/tasks", `{}`, 404, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUsers(t, t.TempDir(), workingAuth(), demo)
			defer srv.Close()
			if got := post(t, srv.URL+"/signup", `{"email":"new@example.com","password":"secret"}`); got.status != 201 {
				t.Fatalf("setup signup: %d %v", got.status, got.body)
			}
			got := post(t, srv.URL+tt.path, tt.body)
			if got.status != tt.wantStatus {
				t.Fatalf("status %d %v, want %d", got.status, got.body, tt.wantStatus)
			}
			msg, _ := got.body["message"].(string)
			token, _ := got.body["token"].(string)
			switch {
			case tt.wantToken && !strings.HasPrefix(token, "token-for-"):
				t.Fatalf("body %v has no token", got.body)
			case !tt.wantToken && msg == "":
				t.Fatalf("body %v has no message", got.body)
			case tt.wantMessage != "" && msg != tt.wantMessage:
				t.Fatalf("message %q, want %q", msg, tt.wantMessage)
			}
		})
	}
}

func TestDemoUserCanBeSwitchedOff(t *testing.T) {
	srv := newUsers(t, t.TempDir(), workingAuth(), nil)
	if got := post(t, srv.URL+"/login", `{"email":"test@gmail.com","password":"testers"}`); got.status != 401 {
		t.Fatalf("demo login with DEMO_USER empty: %d %v, want 401", got.status, got.body)
	}
}

func TestAuthDownIs503NotA401(t *testing.T) {
	srv := newUsers(t, t.TempDir(), downAuth(), demo)
	for _, path := range []string{"/signup", "/login"} {
		got := post(t, srv.URL+path, `{"email":"a@b.c","password":"secret"}`)
		if got.status != 503 || got.body["message"] == "" {
			t.Errorf("%s with auth down: %d %v, want 503 with a message", path, got.status, got.body)
		}
	}
}

// from sends body to handler as a client at addr would.
func from(handler http.Handler, addr, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// TestFailedLoginsAreThrottled: a guesser gets 429 with Retry-After once its address, or the
// account it guesses at, has used up its failures, before anything reaches auth; successful
// logins cost nothing; an address or account past its limit stays open where a login
// succeeded before (the account's owner, someone else behind the guesser's address); and
// guesses at one account from many addresses get exactly the account's limit.
func TestFailedLoginsAreThrottled(t *testing.T) {
	calls := 0
	auth := workingAuth()
	issue := auth.issueToken
	auth.issueToken = func(ctx context.Context, p, h, uid string) (string, error) { calls++; return issue(ctx, p, h, uid) }
	handler := newHandler(t, t.TempDir(), auth, demo, Throttles{
		LoginFailuresPerClient:  throttle.New(3, time.Minute, 100),
		LoginFailuresPerAccount: throttle.New(5, time.Minute, 100),
		KnownLogins:             throttle.NewSeen(time.Hour, 100),
	})
	if rec := from(handler, "192.0.2.200:1", "/signup", `{"email":"neighbour@example.com","password":"pw"}`); rec.Code != 201 {
		t.Fatalf("signup: %d", rec.Code)
	}
	const attacker, neighbour, owner, other = "198.51.100.7:4000", "198.51.100.7:4001", "203.0.113.9:5000", "192.0.2.44:6000"
	for range 10 { // the course's login, many times: never limited
		if rec := from(handler, owner, "/login", `{"email":"test@gmail.com","password":"testers"}`); rec.Code != 200 {
			t.Fatalf("a successful login: %d", rec.Code)
		}
	}
	if rec := from(handler, neighbour, "/login", `{"email":"neighbour@example.com","password":"pw"}`); rec.Code != 200 {
		t.Fatalf("a login behind the attacker's address, before the attack: %d", rec.Code)
	}
	for i := range 3 {
		if rec := from(handler, attacker, "/login", `{"email":"test@gmail.com","password":"guess`+fmt.Sprint(i)+`"}`); rec.Code != 401 {
			t.Fatalf("guess %d: %d, want 401", i, rec.Code)
		}
	}
	before := calls
	rec := from(handler, attacker, "/login", `{"email":"test@gmail.com","password":"testers"}`)
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Too many failed logins") {
		t.Fatalf("the fourth try from the address: %d %s (Retry-After %q), want 429", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if calls != before {
		t.Fatal("a throttled login reached auth")
	}
	if rec := from(handler, neighbour, "/login", `{"email":"neighbour@example.com","password":"pw"}`); rec.Code != 200 {
		t.Fatalf("someone behind the attacker's address who logged in before: %d, want 200", rec.Code)
	}
	if rec := from(handler, owner, "/login", `{"email":"test@gmail.com","password":"testers"}`); rec.Code != 200 {
		t.Fatalf("the owner from another address while the attacker is limited: %d", rec.Code)
	}
	// Guesses at one account from many addresses: the account had 2 failures left.
	var codes []int
	for i := range 5 {
		codes = append(codes, from(handler, fmt.Sprintf("192.0.2.%d:1", i+1), "/login", `{"email":"test@gmail.com","password":"wrong"}`).Code)
	}
	if fmt.Sprint(codes) != "[401 401 429 429 429]" {
		t.Fatalf("5 guesses from 5 addresses with 2 failures left on the account: %v, want [401 401 429 429 429]", codes)
	}
	if rec := from(handler, other, "/login", `{"email":"test@gmail.com","password":"testers"}`); rec.Code != 429 {
		t.Fatalf("an address never seen, the account past its limit: %d, want 429", rec.Code)
	}
	if rec := from(handler, owner, "/login", `{"email":"test@gmail.com","password":"testers"}`); rec.Code != 200 {
		t.Fatalf("the owner, where it logged in before, the account under attack: %d, want 200", rec.Code)
	}
}

func TestSignupsAreThrottledPerAddress(t *testing.T) {
	handler := newHandler(t, t.TempDir(), workingAuth(), nil, Throttles{SignupsPerClient: throttle.New(2, time.Minute, 100)})
	for i := range 2 {
		if rec := from(handler, "198.51.100.7:1", "/signup", fmt.Sprintf(`{"email":"u%d@example.com","password":"pw"}`, i)); rec.Code != 201 {
			t.Fatalf("signup %d: %d", i, rec.Code)
		}
	}
	if rec := from(handler, "198.51.100.7:2", "/signup", `{"email":"u3@example.com","password":"pw"}`); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a third signup from the address: %d, want 429 with Retry-After", rec.Code)
	}
	if rec := from(handler, "203.0.113.9:1", "/signup", `{"email":"u3@example.com","password":"pw"}`); rec.Code != 201 {
		t.Fatalf("a signup from another address: %d", rec.Code)
	}
}
