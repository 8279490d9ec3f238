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

// defaults are what tasks runs with when nothing is set, read once before the tests run.
var defaults config

func TestMain(m *testing.M) { servicetest.Main(m, &defaults, pgtest.RunTests) }

// testConfig is what tasks runs with when nothing is set (defaults), on any free
// ports, with no delay at stop.
func testConfig(t *testing.T) *config {
	cfg := defaults
	cfg.Port, cfg.MetricsPort, cfg.ShutdownDelay = 0, 0, 0
	return &cfg
}

func TestRunStoresTasksInTheConfiguredFolder(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(authapi.VerifyResponse{Message: "Valid token.", UID: "u1"})
	}))
	defer auth.Close()
	folder := filepath.Join(t.TempDir(), "tasks")
	// The injected pair, as kubelet sets it for a Service named auth-service.
	host, port, _ := strings.Cut(strings.TrimPrefix(auth.URL, "http://"), ":")
	cfg.ServiceHost, cfg.ServicePort, cfg.TasksFolder = host, port, folder
	svc := servicetest.Start(t, "tasks", run, cfg)
	req, _ := http.NewRequest("POST", svc.URL+"/tasks", strings.NewReader(`{"title":"t","text":"x"}`))
	req.Header.Set("Authorization", "Bearer any")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /tasks: %s", resp.Status)
	}
	if err := svc.Stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(folder, "tasks.txt"))
	if err != nil || string(raw) != `{"title":"t","text":"x","owner":"u1"}TASK_SPLIT` {
		t.Fatalf("tasks.txt = %q, %v", raw, err)
	}
	if !strings.Contains(svc.Logs(), `"source":"AUTH_SERVICE_SERVICE_HOST and AUTH_SERVICE_SERVICE_PORT"`) {
		t.Errorf("no log line says where auth was found:\n%s", svc.Logs())
	}
}

func fakeAuth(t *testing.T, uid string) *httptest.Server {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(authapi.VerifyResponse{Message: "Valid token.", UID: uid})
	}))
	t.Cleanup(auth.Close)
	return auth
}

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer any")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// withPassword puts a password into a pgtest URL (its server trusts loopback, so it is never
// asked for): the logs must not show it.
func withPassword(url, password string) string {
	return strings.Replace(url, "postgres@", "postgres:"+password+"@", 1)
}

// TestRunKeepsTasksInPostgres: with DATABASE_URL, tasks are in the database, not in
// tasks.txt; they outlive a restart; the log says which store, and never the password.
func TestRunKeepsTasksInPostgres(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	auth := fakeAuth(t, "u1")
	folder := t.TempDir()
	cfg.Address = strings.TrimPrefix(auth.URL, "http://")
	cfg.TasksFolder = folder
	cfg.DatabaseURL = withPassword(pgtest.NewDatabase(t), "hunter2-not-logged")
	cfg.DBMaxConns = 2
	svc := servicetest.Start(t, "tasks", run, cfg)
	svc.WaitReady(t)
	if status, body := send(t, "POST", svc.URL+"/tasks", `{"title":"t","text":"in the database"}`); status != http.StatusCreated {
		t.Fatalf("POST /tasks: %d %s", status, body)
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	again := servicetest.Start(t, "tasks", run, cfg)
	again.WaitReady(t)
	if status, body := send(t, "GET", again.URL+"/tasks", ""); status != http.StatusOK ||
		body != `{"message":"Tasks loaded.","tasks":[{"title":"t","text":"in the database"}]}` {
		t.Fatalf("GET /tasks after a restart: %d %s", status, body)
	}
	if entries, _ := os.ReadDir(folder); len(entries) != 0 {
		t.Errorf("TASKS_FOLDER holds %v: with DATABASE_URL nothing goes there", entries)
	}
	logs := svc.Logs() + again.Logs()
	if !strings.Contains(logs, `"backend":"postgres","database":"postgres@127.0.0.1:`) {
		t.Errorf("no log line says the tasks are in PostgreSQL:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("the database password is in the log:\n%s", logs)
	}
}

// TestImportCommand: "tasks -import FILE" adds a tasks.txt to the database, says how many,
// and adds nothing the second time; the service then lists those tasks.
func TestImportCommand(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "tasks.txt")
	os.WriteFile(path, []byte(`{"title":"from the original","text":""}TASK_SPLIT{"title":"u1's","text":"x","owner":"u1"}TASK_SPLIT{"title":"u2's","text":"","owner":"u2"}TASK_SPLIT`), 0o644)
	url := pgtest.NewDatabase(t)
	for _, want := range []string{`"records":3,"added":3,"alreadyThere":0,"skipped":0`, `"records":3,"added":0,"alreadyThere":3,"skipped":0`} {
		importing := *cfg
		importing.DatabaseURL, importing.importFrom = url, path
		var out strings.Builder
		if err := run(t.Context(), &importing, nil, &out); err != nil {
			t.Fatalf("tasks -import: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("tasks -import printed\n%s\nwant %s", out.String(), want)
		}
	}
	auth := fakeAuth(t, "u1")
	cfg.Address, cfg.DatabaseURL = strings.TrimPrefix(auth.URL, "http://"), url
	svc := servicetest.Start(t, "tasks", run, cfg)
	svc.WaitReady(t)
	if _, body := send(t, "GET", svc.URL+"/tasks", ""); body != `{"message":"Tasks loaded.","tasks":[{"title":"from the original","text":""},{"title":"u1's","text":"x"}]}` {
		t.Fatalf("after the import u1 sees %s", body)
	}
}

// importFlags parses args with the flags tasks adds to every service's (as service.Setup does).
func importFlags(cfg *config, args ...string) error {
	flags := flag.NewFlagSet("tasks", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	cfg.Flags(flags)
	return flags.Parse(args)
}

func TestImportNeedsADatabase(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-import", "tasks.txt"}, {"--import=tasks.txt"}} {
		cfg := testConfig(t)
		if err := importFlags(cfg, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if err := run(t.Context(), cfg, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("%v without DATABASE_URL: %v, want an error naming DATABASE_URL", args, err)
		}
	}
	if err := importFlags(testConfig(t), "-import"); err == nil || !strings.Contains(err.Error(), "needs an argument") {
		t.Errorf("-import with no file: %v", err)
	}
}
