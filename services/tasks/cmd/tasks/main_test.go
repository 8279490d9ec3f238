package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/servicetest"
)

func TestRunStoresTasksInTheConfiguredFolder(t *testing.T) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(authapi.VerifyResponse{Message: "Valid token.", UID: "u1"})
	}))
	defer auth.Close()
	folder := filepath.Join(t.TempDir(), "tasks")
	// The injected pair, as kubelet sets it for a Service named auth-service.
	host, port, _ := strings.Cut(strings.TrimPrefix(auth.URL, "http://"), ":")
	svc := servicetest.Start(t, "tasks", run, map[string]string{
		"AUTH_SERVICE_SERVICE_HOST": host,
		"AUTH_SERVICE_SERVICE_PORT": port,
		"TASKS_FOLDER":              folder,
	})
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
