package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/harness/servicetest"
)

// defaults are what the frontend runs with when nothing is set, read once before the tests run.
var defaults config

func TestMain(m *testing.M) { servicetest.Main(m, &defaults, (*testing.M).Run) }

// testConfig is what the frontend runs with when nothing is set (defaults), on any free
// ports, with no delay at stop.
func testConfig(t *testing.T) *config {
	cfg := defaults
	cfg.Port, cfg.MetricsPort, cfg.ShutdownDelay = 0, 0, 0
	return &cfg
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestRunServesThePageAndForwardsTheAPI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"message": "users " + r.Method + " " + r.URL.Path})
	}))
	defer users.Close()
	tasks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"message": "tasks " + r.Method + " " + r.URL.Path})
	}))
	defer tasks.Close()
	// users by its address, tasks by the pair kubelet injects for a Service named tasks-service.
	host, port, _ := strings.Cut(strings.TrimPrefix(tasks.URL, "http://"), ":")
	cfg.UsersAddress, cfg.TasksServiceHost, cfg.TasksServicePort = users.URL, host, port
	svc := servicetest.Start(t, "frontend", run, cfg)

	resp, body := get(t, svc.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>kub-demo tasks</title>") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("GET /: %s %s\n%s", resp.Status, resp.Header, body)
	}
	for _, file := range []string{"/app.js", "/app.css"} {
		if resp, _ := get(t, svc.URL+file); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", file, resp.Status)
		}
	}
	if resp, body := get(t, svc.URL+"/config.js"); resp.StatusCode != http.StatusOK ||
		body != `window.kubDemoConfig = {"mode":"proxy","usersURL":"/api","tasksURL":"/api"};`+"\n" {
		t.Errorf("GET /config.js: %s %q", resp.Status, body)
	}
	for path, want := range map[string]string{
		"/api/signup": "users POST /signup",
		"/api/login":  "users POST /login",
		"/api/tasks":  "tasks POST /tasks",
	} {
		resp, err := http.Post(svc.URL+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Message != want {
			t.Errorf("POST %s reached %q, want %q", path, got.Message, want)
		}
	}
	if resp, body := get(t, svc.URL+"/api/other"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"message"`) {
		t.Errorf("GET /api/other: %s %s", resp.Status, body)
	}
	logs := svc.Logs()
	for _, want := range []string{`"source":"USERS_ADDRESS"`, `"source":"TASKS_SERVICE_SERVICE_HOST and TASKS_SERVICE_SERVICE_PORT"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line says %s:\n%s", want, logs)
		}
	}
}

func TestRunRefusesSettingsItCannotUse(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		set  func(*config)
		want []string
	}{
		"no way to find users": {
			set:  func(c *config) { c.TasksAddress = "tasks" },
			want: []string{"USERS_ADDRESS", "USERS_SERVICE_SERVICE_HOST", "USERS_SERVICE_SERVICE_PORT"},
		},
		"no way to find tasks": {
			set:  func(c *config) { c.UsersAddress = "users" },
			want: []string{"TASKS_ADDRESS", "TASKS_SERVICE_SERVICE_HOST", "TASKS_SERVICE_SERVICE_PORT"},
		},
		"direct mode without tasks' public URL": {
			set:  func(c *config) { c.UsersAddress, c.TasksAddress, c.APIMode = "users", "tasks", "direct" },
			want: []string{"TASKS_PUBLIC_URL"},
		},
		"a public URL that is not one": {
			set: func(c *config) {
				c.UsersAddress, c.TasksAddress, c.APIMode, c.TasksPublicURL = "users", "tasks", "direct", "localhost:8000"
			},
			want: []string{"TASKS_PUBLIC_URL", "http://localhost:8000"},
		},
		"an unknown mode": {
			set:  func(c *config) { c.UsersAddress, c.TasksAddress, c.APIMode = "users", "tasks", "nginx" },
			want: []string{"FRONTEND_API_MODE", "proxy or direct"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			c.set(cfg)
			var out bytes.Buffer
			err := run(context.Background(), cfg, nil, &out)
			if err == nil {
				t.Fatal("run started")
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
}

func TestDirectModeHandsThePageThePublicURLs(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.UsersAddress, cfg.TasksAddress, cfg.APIMode = "users", "tasks", "direct"
	cfg.UsersPublicURL, cfg.TasksPublicURL = "http://localhost:8080/", "http://localhost:8000"
	svc := servicetest.Start(t, "frontend", run, cfg)
	_, body := get(t, svc.URL+"/config.js")
	if body != `window.kubDemoConfig = {"mode":"direct","usersURL":"http://localhost:8080","tasksURL":"http://localhost:8000"};`+"\n" {
		t.Errorf("GET /config.js: %q", body)
	}
	resp, _ := get(t, svc.URL+"/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' http://localhost:8080 http://localhost:8000;") {
		t.Errorf("the page may not call the public URLs: %s", csp)
	}
}

// TestTheTrailAndTheNetworkPage: an answer through /api/ names the frontend's pod, then the
// upstream's; the network page is served, and its views stay off until a setting asks.
func TestTheTrailAndTheNetworkPage(t *testing.T) {
	t.Parallel()
	tasks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "tasks tasks-a 10.0.0.2 - dev")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"Tasks loaded.","tasks":[]}`))
	}))
	defer tasks.Close()
	cfg := testConfig(t)
	cfg.UsersAddress, cfg.TasksAddress, cfg.PodName = "127.0.0.1:1", tasks.URL, "frontend-test-pod"
	svc := servicetest.Start(t, "frontend", run, cfg)
	resp, body := get(t, svc.URL+"/api/tasks")
	if got := resp.Header.Values("X-Served-By"); len(got) != 2 || !strings.HasPrefix(got[0], "frontend frontend-test-pod ") || got[1] != "tasks tasks-a 10.0.0.2 - dev" {
		t.Errorf("X-Served-By %q, want the frontend's pod (POD_NAME), then tasks'", got)
	}
	if body != `{"message":"Tasks loaded.","tasks":[]}` {
		t.Errorf("the body changed on the way: %s", body)
	}
	for _, file := range []string{"/network.html", "/network.js"} {
		if resp, _ := get(t, svc.URL+file); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", file, resp.Status)
		}
	}
	if resp, body := get(t, svc.URL+"/network/discovery"); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"enabled":false`) || !strings.Contains(body, "DISCOVERY_CHAIN=true") || strings.Contains(body, `"service":"frontend"`) {
		t.Errorf("GET /network/discovery with no setting: %s %s", resp.Status, body)
	}
}

func TestTheNetworkPageShowsTheFrontendsOwnView(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.UsersAddress, cfg.TasksAddress, cfg.PodName = "127.0.0.1:1", "127.0.0.2:2", "frontend-test-pod"
	cfg.UsersURL = "http://127.0.0.1:1/discovery"
	svc := servicetest.Start(t, "frontend", run, cfg, "TASKS_SERVICE_SERIVCE_HOST=10.0.0.9")
	_, body := get(t, svc.URL+"/network/discovery")
	var a struct {
		Enabled bool
		Views   []struct {
			Service, Pod, Error, Off string
			View                     *struct{ Warnings []string }
		}
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || !a.Enabled || len(a.Views) != 4 {
		t.Fatalf("%v: %s", err, body)
	}
	fe := a.Views[0]
	if fe.Service != "frontend" || !strings.HasPrefix(fe.Pod, "frontend frontend-test-pod ") || fe.View == nil ||
		!slices.ContainsFunc(fe.View.Warnings, func(w string) bool { return strings.Contains(w, "did you mean TASKS_SERVICE_SERVICE_HOST?") }) {
		t.Errorf("the frontend's own view: %s", body)
	}
	if users := a.Views[1]; !strings.Contains(users.Error, "connection refused") {
		t.Errorf("users' view, at a port nothing listens on: %+v", users)
	}
	if tasks := a.Views[2]; !strings.Contains(tasks.Off, "TASKS_DISCOVERY_URL") {
		t.Errorf("tasks' view, not asked for: %+v", tasks)
	}
}
