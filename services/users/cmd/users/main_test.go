package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/servicetest"
)

// fakeAuthServer answers the auth API at the boundary: "hashes" reversibly, issues "t-<uid>".
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
	auth := fakeAuthServer(t)
	svc := servicetest.Start(t, "users", run, map[string]string{
		"AUTH_ADDRESS": strings.TrimPrefix(auth.URL, "http://"),
		"USERS_FOLDER": t.TempDir(),
	})
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
	t.Setenv("AUTH_ADDRESS", "auth")
	t.Setenv("DEMO_USER", "no-password-here")
	if err := run(t.Context(), []string{"users"}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "DEMO_USER") {
		t.Fatalf("run = %v, want an error naming DEMO_USER", err)
	}
}
