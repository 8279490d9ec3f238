package pgstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/server"
	"github.com/kub-demo/kub-demo/storage/pgdb"
)

// The contract both user stores keep is tested in package contract; here is what only the
// database store does.

func TestMain(m *testing.M) { os.Exit(pgtest.RunTests(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestNoDatabaseIsUnavailable: with nothing behind DATABASE_URL, calls fail within the
// timeout with accounts.ErrUnavailable (a 503), never showing the password.
func TestNoDatabaseIsUnavailable(t *testing.T) {
	s, err := Open(pgdb.Config{URL: pgtest.UnreachableURL(t), MaxConns: 2, Timeout: time.Second}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.ByEmail(t.Context(), "a@b.c"); !errors.Is(err, accounts.ErrUnavailable) {
		t.Errorf("ByEmail: %v, want ErrUnavailable", err)
	}
	start := time.Now()
	if err := s.Migrate(t.Context()); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Migrate: %v after %s", err, time.Since(start))
	}
	err = s.Create(t.Context(), accounts.User{ID: "x", Email: "a@b.c", CreatedAt: time.Now()})
	if !errors.Is(err, accounts.ErrUnavailable) || strings.Contains(err.Error(), pgtest.UnreachablePassword) {
		t.Errorf("Create: %v, want ErrUnavailable without the password", err)
	}

	// Through the API: 503 with a message, as when auth is down.
	srv := httptest.NewServer(server.Routes(server.Deps{Log: quiet, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Accounts: accounts.New(s, upAuth{}, nil, quiet)}))
	defer srv.Close()
	for _, path := range []string{"/signup", "/login"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"email":"a@b.c","password":"pw"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "The user store is unavailable.") {
			t.Errorf("%s with no database: %d %s, want 503", path, resp.StatusCode, body)
		}
	}
}

// upAuth is an auth that answers.
type upAuth struct{}

func (upAuth) HashPassword(_ context.Context, p string) (string, error) { return "h:" + p, nil }
func (upAuth) IssueToken(context.Context, string, string, string) (string, error) {
	return "t", nil
}
