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
	"sync"
	"testing"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
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

func (f *fakeAuth) Ping(ctx context.Context) error {
	_, err := f.hashPassword(ctx, "ping")
	return err
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
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	store, err := accounts.OpenStore(folder, log, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Routes(log, &httpserver.Probes{}, metrics.New(), accounts.New(store, auth, demo, log), Throttles{}))
	t.Cleanup(func() { srv.Close(); store.Close() })
	return srv
}

type answer struct {
	status int
	body   map[string]any
}

func post(t *testing.T, url, body string) answer {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	a.status = resp.StatusCode
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("POST %s: body %q is not a JSON object", url, raw)
	}
	return a
}

const missing = "An email and password needs to be specified!"

func TestAPI(t *testing.T) {
	srv := newUsers(t, t.TempDir(), workingAuth(), demo)
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantMessage      string // "" checks only that some message is there
		wantToken        bool
	}{
		{"demo user logs in without signup", "/login", `{"email":"test@gmail.com","password":"testers"}`, 200, "", true},
		{"signup", "/signup", `{"email":"new@example.com","password":"secret"}`, 201, "User created!", false},
		{"login after signup", "/login", `{"email":"new@example.com","password":"secret"}`, 200, "", true},
		{"login ignores email case and spaces", "/login", `{"email":" New@Example.COM ","password":"secret"}`, 200, "", true},
		{"signup twice", "/signup", `{"email":"new@example.com","password":"other"}`, 409, "", false},
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
		{"body over 1 MiB", "/signup", `{"email":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "", false},
		{"unknown route", "/tasks", `{}`, 404, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

func TestUsersSurviveARestart(t *testing.T) {
	folder := t.TempDir()
	first := newUsers(t, folder, workingAuth(), demo)
	if got := post(t, first.URL+"/signup", `{"email":"keep@example.com","password":"pw"}`); got.status != 201 {
		t.Fatalf("signup: %v", got)
	}
	first.Close()
	second := newUsers(t, folder, workingAuth(), demo)
	if got := post(t, second.URL+"/login", `{"email":"keep@example.com","password":"pw"}`); got.status != 200 {
		t.Fatalf("login after restart: %d %v", got.status, got.body)
	}
}

func TestConcurrentSignupsLoseNothingAndNeverDuplicate(t *testing.T) {
	folder := t.TempDir()
	srv := newUsers(t, folder, workingAuth(), nil)
	const distinct, sameEmail = 60, 20
	statuses := make(chan int, distinct+sameEmail)
	var wg sync.WaitGroup
	for i := range distinct + sameEmail {
		email := fmt.Sprintf("user%d@example.com", i)
		if i >= distinct {
			email = "contested@example.com"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- post(t, srv.URL+"/signup", `{"email":"`+email+`","password":"pw"}`).status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[201] != distinct+1 || count[409] != sameEmail-1 {
		t.Fatalf("statuses %v, want %d × 201 and %d × 409", count, distinct+1, sameEmail-1)
	}
	srv.Close()
	reopened := newUsers(t, folder, workingAuth(), nil)
	for i := range distinct {
		body := fmt.Sprintf(`{"email":"user%d@example.com","password":"pw"}`, i)
		if got := post(t, reopened.URL+"/login", body); got.status != 200 {
			t.Fatalf("user%d lost after reopen: %d", i, got.status)
		}
	}
}
