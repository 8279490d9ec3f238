package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/harness/servicetest"
)

// defaults are what users runs with when nothing is set, read once before the tests run.
var defaults config

func TestMain(m *testing.M) { servicetest.Main(m, &defaults, pgtest.RunTests) }

// testConfig is what users runs with when nothing is set (defaults), on any free
// ports, with no delay at stop.
func testConfig(t *testing.T) *config {
	cfg := defaults
	cfg.Port, cfg.MetricsPort, cfg.ShutdownDelay = 0, 0, 0
	return &cfg
}

// fakeAuthServer answers auth's three calls the way auth does (JSON, its statuses).
func fakeAuthServer(t *testing.T) *httptest.Server {
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+authapi.PathHashPassword, func(w http.ResponseWriter, r *http.Request) {
		var req authapi.HashRequest
		json.NewDecoder(r.Body).Decode(&req)
		answer(w, http.StatusOK, authapi.HashResponse{HashedPassword: "h:" + req.Password})
	})
	mux.HandleFunc("POST "+authapi.PathIssueToken, func(w http.ResponseWriter, r *http.Request) {
		var req authapi.TokenRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.HashedPassword != "h:"+req.Password {
			answer(w, http.StatusUnauthorized, map[string]string{"message": "Invalid credentials."})
			return
		}
		answer(w, http.StatusOK, authapi.TokenResponse{Token: "t-" + req.UID})
	})
	mux.HandleFunc("POST "+authapi.PathVerifyToken, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusUnauthorized, map[string]string{"message": "Could not verify token."})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRunServesTheDemoLogin(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	auth := fakeAuthServer(t)
	cfg.Address, cfg.UsersFolder = strings.TrimPrefix(auth.URL, "http://"), t.TempDir()
	svc := servicetest.Start(t, "users", run, cfg)
	resp, err := http.Post(svc.URL+"/login", "application/json", strings.NewReader(`{"email":"test@gmail.com","password":"testers"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("demo login: %s", resp.Status)
	}
	if err := svc.Stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if !strings.Contains(svc.Logs(), `"source":"AUTH_ADDRESS"`) {
		t.Errorf("no log line says where auth was found:\n%s", svc.Logs())
	}
}

func TestRunRefusesABadDemoUserSetting(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Address, cfg.DemoUser = "auth", "no-password-here"
	if err := run(t.Context(), cfg, nil, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "DEMO_USER") {
		t.Fatalf("run = %v, want an error naming DEMO_USER", err)
	}
}

func login(t *testing.T, url, email, password string) int {
	t.Helper()
	resp, err := http.Post(url+"/login", "application/json", strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRunKeepsUsersInPostgres: with DATABASE_URL, accounts are in the database, not in
// users.jsonl; they outlive a restart; the log says which store, and never the password.
func TestRunKeepsUsersInPostgres(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	auth := fakeAuthServer(t)
	folder := t.TempDir()
	cfg.Address = strings.TrimPrefix(auth.URL, "http://")
	cfg.UsersFolder = folder
	cfg.DatabaseURL = strings.Replace(pgtest.NewDatabase(t), "postgres@", "postgres:hunter2-not-logged@", 1)
	svc := servicetest.Start(t, "users", run, cfg)
	svc.WaitReady(t)
	resp, err := http.Post(svc.URL+"/signup", "application/json", strings.NewReader(`{"email":"db@example.com","password":"pw"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("signup: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	again := servicetest.Start(t, "users", run, cfg)
	again.WaitReady(t)
	if status := login(t, again.URL, "db@example.com", "pw"); status != http.StatusOK {
		t.Fatalf("login after a restart: %d", status)
	}
	if entries, _ := os.ReadDir(folder); len(entries) != 0 {
		t.Errorf("USERS_FOLDER holds %v: with DATABASE_URL nothing goes there", entries)
	}
	logs := svc.Logs() + again.Logs()
	if !strings.Contains(logs, `"backend":"postgres","database":"postgres@127.0.0.1:`) {
		t.Errorf("no log line says the users are in PostgreSQL:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("the database password is in the log:\n%s", logs)
	}
}

// TestImportCommand: "users -import FILE" adds a users.jsonl to the database, says how many,
// adds nothing the second time; those users then log in.
func TestImportCommand(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "users.jsonl")
	os.WriteFile(path, []byte(`{"id":"U1","email":"old@example.com","passwordHash":"h:old-pw","createdAt":"2026-01-02T03:04:05Z"}`+"\n"), 0o644)
	url := pgtest.NewDatabase(t)
	for _, want := range []string{`"users":1,"added":1,"alreadyThere":0`, `"users":1,"added":0,"alreadyThere":1`} {
		importing := *cfg
		importing.DatabaseURL, importing.importFrom = url, path
		var out strings.Builder
		if err := run(t.Context(), &importing, nil, &out); err != nil {
			t.Fatalf("users -import: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("users -import printed\n%s\nwant %s", out.String(), want)
		}
	}
	auth := fakeAuthServer(t)
	cfg.Address, cfg.DatabaseURL = strings.TrimPrefix(auth.URL, "http://"), url
	svc := servicetest.Start(t, "users", run, cfg)
	svc.WaitReady(t)
	if status := login(t, svc.URL, "old@example.com", "old-pw"); status != http.StatusOK {
		t.Fatalf("an imported user's login: %d", status)
	}
}

func TestImportNeedsADatabase(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	flags := flag.NewFlagSet("users", flag.ContinueOnError)
	cfg.Flags(flags) // as service.Setup adds it to every service's flags
	if err := flags.Parse([]string{"-import", "users.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), cfg, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("-import without DATABASE_URL: %v, want an error naming DATABASE_URL", err)
	}
}
