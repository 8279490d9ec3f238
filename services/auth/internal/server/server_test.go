package server

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

// newAuth serves the real routes on loopback; logs go to the returned builder.
func newAuth(t testing.TB) (*httptest.Server, *strings.Builder) {
	t.Helper()
	hasher, err := password.NewHasher(password.Options{Cost: 4, Workers: 2, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := token.NewIssuer(token.Options{Secret: []byte("0123456789abcdef0123456789abcdef"), Issuer: "kub-demo", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(Routes(Deps{Log: log, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Hasher: hasher, Issuer: issuer, APIKey: testAPIKey}))
	t.Cleanup(srv.Close)
	return srv, logs
}

const testAPIKey = "the-service-credential-for-tests-0123456789"

func TestClientRoundTrip(t *testing.T) {
	srv, logs := newAuth(t)
	client := authapi.NewClient(authapi.Config{URL: srv.URL, APIKey: testAPIKey, Timeout: 2 * time.Second})
	ctx := context.Background()

	hash, err := client.HashPassword(ctx, "testers")
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	signed, err := client.IssueToken(ctx, "testers", hash, "uid-1")
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	uid, err := client.VerifyToken(ctx, signed)
	if err != nil || uid != "uid-1" {
		t.Fatalf("VerifyToken = %q, %v; want uid-1", uid, err)
	}

	if _, err := client.IssueToken(ctx, "wrong", hash, "uid-1"); !errors.Is(err, authapi.ErrRejected) {
		t.Errorf("wrong password: %v, want ErrRejected", err)
	}
	if _, err := client.IssueToken(ctx, "testers", "", "uid-1"); !errors.Is(err, authapi.ErrRejected) {
		t.Errorf("unknown user (no hash): %v, want ErrRejected", err)
	}
	if _, err := client.VerifyToken(ctx, signed+"x"); !errors.Is(err, authapi.ErrRejected) {
		t.Errorf("tampered token: %v, want ErrRejected", err)
	}
	for _, secret := range []string{"testers", hash, signed} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain a secret %q:\n%s", secret, logs)
		}
	}
}

func TestErrorsAreJSON(t *testing.T) {
	srv, _ := newAuth(t)
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"hash without password", "POST", authapi.PathHashPassword, `{}`, 422},
		{"hash of 73 bytes", "POST", authapi.PathHashPassword, `{"password":"` + strings.Repeat("x", 73) + `"}`, 422},
		{"hash with broken JSON", "POST", authapi.PathHashPassword, `{"password":`, 400},
		{"token without uid", "POST", authapi.PathIssueToken, `{"password":"p","hashedPassword":"h"}`, 422},
		{"verify without token", "POST", authapi.PathVerifyToken, `{}`, 401},
		{"verify the original's fixed token", "POST", authapi.PathVerifyToken, `{"token":"abc"}`, 401},
		{"the original's password-in-URL route is gone", "GET", "/hashed-password/testers", "", 404},
		{"the original's token-in-URL route is gone", "GET", "/verify-token/abc", "", 404},
		{"wrong method", "GET", authapi.PathVerifyToken, "", 405},
		{"body over 64 KiB", "POST", authapi.PathHashPassword, `{"password":"` + strings.Repeat("x", 1<<20) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+testAPIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct{ Message string }
			if resp.StatusCode != tt.want || json.Unmarshal(raw, &body) != nil || body.Message == "" {
				t.Fatalf("got %d %s, want %d with a JSON message", resp.StatusCode, raw, tt.want)
			}
		})
	}
}

// TestReadinessPingsAreNotLoggedAsRefusals: users and tasks ping auth with an empty token
// until it answers (authapi.Client.Ping). That refusal is what they asked for: an operator
// reading auth's log at info must not see it as a refused token, while a real one still is.
func TestReadinessPingsAreNotLoggedAsRefusals(t *testing.T) {
	srv, logs := newAuth(t)
	client := authapi.NewClient(authapi.Config{URL: srv.URL, APIKey: testAPIKey, Timeout: 2 * time.Second})
	if err := client.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if refused := infoLines(logs.String(), "token refused"); len(refused) != 0 {
		t.Fatalf("a readiness ping was logged at info as a refused token:\n%s", strings.Join(refused, "\n"))
	}
	if _, err := client.VerifyToken(context.Background(), "not.a.token"); !errors.Is(err, authapi.ErrRejected) {
		t.Fatalf("VerifyToken of a malformed token: %v, want ErrRejected", err)
	}
	if refused := infoLines(logs.String(), "token refused"); len(refused) != 1 {
		t.Fatalf("a malformed token was logged %d times at info, want once:\n%s", len(refused), logs)
	}
}

// TestRefusedKeyIsLoggedOncePerCaller: a users or tasks with the wrong AUTH_API_KEY calls auth
// on every request. auth's log says once per caller why it refused it, never per request, and
// never shows what the caller presented.
func TestRefusedKeyIsLoggedOncePerCaller(t *testing.T) {
	srv, logs := newAuth(t)
	const wrongKey = "a-service-credential-that-is-not-auths-0123"
	wrong := authapi.NewClient(authapi.Config{URL: srv.URL, APIKey: wrongKey, Timeout: 2 * time.Second})
	for range 5 {
		if _, err := wrong.VerifyToken(context.Background(), "a.b.c"); !errors.Is(err, authapi.ErrKeyRefused) {
			t.Fatalf("VerifyToken with a wrong key: %v, want ErrKeyRefused", err)
		}
		if _, err := wrong.HashPassword(context.Background(), "pw"); !errors.Is(err, authapi.ErrKeyRefused) {
			t.Fatalf("HashPassword with a wrong key: %v, want ErrKeyRefused", err)
		}
	}
	refused := linesWith(logs.String(), "caller refused")
	if len(refused) != 1 || !strings.Contains(refused[0], `"caller":"127.0.0.1"`) ||
		!strings.Contains(refused[0], "AUTH_API_KEY differs from auth's") || !strings.Contains(refused[0], `"level":"WARN"`) {
		t.Fatalf("10 calls with a wrong key logged %d refusals, want one WARN naming the caller and why:\n%s", len(refused), logs)
	}
	if strings.Contains(logs.String(), wrongKey) {
		t.Errorf("the key a caller presented reached the log:\n%s", logs)
	}
}

// TestRefusalsAreLoggedPerCallerAddress: each address is logged once whatever port its
// connections come from, another address gets its own line, and a caller still refused a
// period later is logged again.
func TestRefusalsAreLoggedPerCallerAddress(t *testing.T) {
	logs := &strings.Builder{}
	refusals := newRefusalLog(slog.New(slog.NewJSONHandler(logs, nil)), time.Hour)
	call := func(remote string) {
		r := httptest.NewRequest("POST", authapi.PathVerifyToken, nil)
		r.RemoteAddr = remote
		refusals.refused(r, refusalReason("", false))
	}
	call("10.0.0.1:40001")
	call("10.0.0.1:40002")
	call("10.0.0.2:40001")
	call("[fd00::1]:40001")
	if got := len(linesWith(logs.String(), "caller refused")); got != 3 {
		t.Fatalf("3 callers logged %d times, want 3:\n%s", got, logs)
	}
	refusals.logged["10.0.0.1"] = time.Now().Add(-time.Hour)
	call("10.0.0.1:40003")
	if got := len(linesWith(logs.String(), "caller refused")); got != 4 {
		t.Fatalf("a caller still refused an hour later was not logged again:\n%s", logs)
	}
}

// linesWith returns the log lines that contain s.
func linesWith(logs, s string) []string {
	var found []string
	for line := range strings.Lines(logs) {
		if strings.Contains(line, s) {
			found = append(found, strings.TrimSpace(line))
		}
	}
	return found
}

// infoLines returns the log lines at info or above that contain s.
func infoLines(logs, s string) []string {
	var found []string
	for _, line := range linesWith(logs, s) {
		if !strings.Contains(line, `"level":"DEBUG"`) {
			found = append(found, line)
		}
	}
	return found
}
