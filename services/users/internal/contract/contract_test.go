package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/filestore"
	"github.com/kub-demo/kub-demo/services/users/internal/pgstore"
	"github.com/kub-demo/kub-demo/services/users/internal/server"
	"github.com/kub-demo/kub-demo/storage/pgdb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunTests(m)) }

// opener opens a store on one test's storage: again and again, for restarts and replicas.
// Every store it opens is closed when the test ends.
type opener func(t *testing.T) accounts.Store

type backend struct {
	name       string
	newStorage func(t *testing.T) opener
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var backends = []backend{
	{"file", func(t *testing.T) opener {
		folder := t.TempDir()
		return func(t *testing.T) accounts.Store {
			s, err := filestore.Open(folder, quiet, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}},
	{"postgres", func(t *testing.T) opener {
		url := pgtest.NewDatabase(t)
		return func(t *testing.T) accounts.Store {
			s, err := pgstore.Open(pgdb.Config{URL: url, MaxConns: 4, Timeout: 10 * time.Second}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
}

func forEach(t *testing.T, test func(t *testing.T, open opener)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.newStorage(t)) })
	}
}

// fakeAuth stands in for auth: it "hashes" reversibly and issues "token-for-<uid>" when the
// password matches.
type fakeAuth struct{}

var _ accounts.Auth = fakeAuth{}

func (fakeAuth) HashPassword(_ context.Context, p string) (string, error) { return "hashed:" + p, nil }
func (fakeAuth) IssueToken(_ context.Context, p, h, uid string) (string, error) {
	if h != "hashed:"+p {
		return "", authapi.ErrRejected
	}
	return "token-for-" + uid, nil
}

var demo = &accounts.Credentials{Email: "test@gmail.com", Password: "testers"}

// serve answers the public API over users; it returns the base URL.
func serve(t *testing.T, users accounts.Store) string {
	srv := httptest.NewServer(server.Routes(server.Deps{Log: quiet, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Accounts: accounts.New(users, fakeAuth{}, demo, quiet)}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type answer struct {
	status int
	raw    string
}

func post(base, path, email, password string) (answer, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+path, "application/json", strings.NewReader(string(body)))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(raw)}, nil
}

func mustPost(t *testing.T, base, path, email, password string) answer {
	t.Helper()
	a, err := post(base, path, email, password)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSignupAndLogin: the course's answers, and the rewrite's refusals, byte for byte.
func TestSignupAndLogin(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		base := serve(t, open(t))
		steps := []struct {
			path, email, password string
			status                int
			raw                   string // "" checks the status only
		}{
			{"/login", "test@gmail.com", "testers", 200, ""},
			{"/signup", "new@example.com", "secret", 201, `{"message":"User created!"}`},
			{"/login", "new@example.com", "secret", 200, ""},
			{"/login", "  NEW@Example.com ", "secret", 200, ""},
			{"/signup", "New@Example.COM", "other", 409, `{"message":"A user with this email exists already."}`},
			{"/signup", "test@gmail.com", "x", 409, ""},
			{"/login", "new@example.com", "wrong", 401, `{"message":"Invalid email or password."}`},
			{"/login", "who@example.com", "secret", 401, `{"message":"Invalid email or password."}`},
			{"/login", "a\x00b@example.com", "secret", 422, `{"message":"An email cannot hold control characters."}`},
			{"/signup", "a\x00b@example.com", "secret", 422, `{"message":"An email cannot hold control characters."}`},
			{"/signup", "Café+ünïcødé@exämple.com", "pw", 201, ""},
			{"/login", "café+ünïcødé@exämple.com", "pw", 200, ""},
			{"/signup", "o'brien@example.com", "'; DROP TABLE users; --", 201, ""},
			{"/login", "o'brien@example.com", "'; DROP TABLE users; --", 200, ""},
		}
		for _, s := range steps {
			got := mustPost(t, base, s.path, s.email, s.password)
			if got.status != s.status || (s.raw != "" && got.raw != s.raw) {
				t.Errorf("%s %q: %d %s, want %d %s", s.path, s.email, got.status, got.raw, s.status, s.raw)
			}
		}
	})
}

// TestOneAccountPerEmailAcrossReplicas: two replicas on one storage take concurrent signups,
// many for one email: exactly one gets 201, every other email gets its 201, and each replica
// logs every user in.
func TestOneAccountPerEmailAcrossReplicas(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		replicas := []string{serve(t, open(t)), serve(t, open(t))}
		const distinct, contested = 30, 20
		statuses := make(chan int, distinct+contested)
		var wg sync.WaitGroup
		for i := range distinct + contested {
			email := fmt.Sprintf("user%d@example.com", i)
			if i >= distinct {
				email = "contested@example.com"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := post(replicas[i%2], "/signup", email, "pw")
				if err != nil {
					t.Error(err)
				}
				statuses <- a.status
			}()
		}
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for s := range statuses {
			count[s]++
		}
		if count[201] != distinct+1 || count[409] != contested-1 {
			t.Fatalf("statuses %v, want %d × 201 and %d × 409", count, distinct+1, contested-1)
		}
		for _, base := range replicas {
			for i := range distinct {
				if got := mustPost(t, base, "/login", fmt.Sprintf("user%d@example.com", i), "pw"); got.status != 200 {
					t.Fatalf("user%d cannot log in on %s: %d", i, base, got.status)
				}
			}
		}
	})
}

// TestDemoUserOnceWithReplicas: replicas that log the demo user in at once all succeed, and
// one account is made.
func TestDemoUserOnceWithReplicas(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		stores := []accounts.Store{open(t), open(t), open(t)}
		var wg sync.WaitGroup
		for _, s := range stores {
			base := serve(t, s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if a, err := post(base, "/login", "test@gmail.com", "testers"); err != nil || a.status != 200 {
					t.Errorf("demo login: %v %v", a, err)
				}
			}()
		}
		wg.Wait()
		first, found, err := stores[0].ByEmail(t.Context(), "test@gmail.com")
		if err != nil || !found {
			t.Fatalf("no demo user: %v", err)
		}
		for _, s := range stores[1:] {
			if u, _, _ := s.ByEmail(t.Context(), "test@gmail.com"); u.ID != first.ID {
				t.Errorf("replicas see different demo users: %s and %s", first.ID, u.ID)
			}
		}
	})
}

func TestUsersOutliveARestart(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		// A subtest's store and server are closed when it ends: the first process stops.
		t.Run("before", func(t *testing.T) { mustPost(t, serve(t, open(t)), "/signup", "keep@example.com", "pw") })
		if got := mustPost(t, serve(t, open(t)), "/login", "keep@example.com", "pw"); got.status != 200 {
			t.Fatalf("login after a restart: %d %s", got.status, got.raw)
		}
	})
}

// TestImportedFileLogsTheSameUsersIn: a users.jsonl (with a glued and a damaged line) read
// by the file store and imported into the database lets the same users in.
func TestImportedFileLogsTheSameUsersIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), filestore.FileName)
	line := func(id, email, password string) string {
		b, _ := json.Marshal(accounts.User{ID: id, Email: email, PasswordHash: "hashed:" + password, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
		return string(b)
	}
	content := line("A", "a@example.com", "pa") + "\n" + line("B", "b@example.com", "pb") + line("C", "c@example.com", "pc") + "\n" +
		`{"id":"D","email":"d@exa` + "\n" + line("E", "a@example.com", "second a") + "\n" + line("F", "f\x00@example.com", "pf") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := filestore.Open(filepath.Dir(path), quiet, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	db, err := pgstore.Open(pgdb.Config{URL: pgtest.NewDatabase(t), MaxConns: 2, Timeout: 10 * time.Second}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Import(t.Context(), path)
	if err != nil || got != (pgstore.Imported{Read: 4, Added: 3, Skipped: 1}) {
		t.Fatalf("import: %+v, %v", got, err)
	}
	if again, err := db.Import(t.Context(), path); err != nil || again != (pgstore.Imported{Read: 4, Present: 3, Skipped: 1}) {
		t.Fatalf("the same file again: %+v, %v", again, err)
	}
	fromFile, fromDB := serve(t, file), serve(t, db)
	for _, c := range []struct{ email, password string }{{"a@example.com", "pa"}, {"a@example.com", "second a"}, {"b@example.com", "pb"}, {"c@example.com", "pc"}, {"d@example.com", "pd"}} {
		f, d := mustPost(t, fromFile, "/login", c.email, c.password), mustPost(t, fromDB, "/login", c.email, c.password)
		if f.status != d.status || f.raw != d.raw {
			t.Errorf("%s/%s: the file store answers %d %s, the database %d %s", c.email, c.password, f.status, f.raw, d.status, d.raw)
		}
	}
}
