package trail_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/trail"
)

// TestAnswersNameThePodAndTheAuthPod: through the middleware, an answer names the pod that
// served it, and, when the handler had a token verified, the auth pod that verified it, or
// that the cache answered and how long ago auth had.
func TestAnswersNameThePodAndTheAuthPod(t *testing.T) {
	auth := httptest.NewServer(trail.Middleware(trail.Pod{Service: "auth", Name: "auth-7c9", IP: "10.0.0.5", Node: "node-1", Version: "v1"})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"message":"Valid token.","uid":"u1"}`))
		})))
	defer auth.Close()
	client := authapi.NewClient(authapi.Config{URL: auth.URL, Timeout: time.Second, VerifyCache: time.Minute, VerifyCacheEntries: 10})
	token := "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln" // exp 2100-01-01
	tasks := httptest.NewServer(trail.Middleware(trail.Pod{Service: "tasks", Name: "tasks-5d2"})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := client.VerifyToken(r.Context(), token); err != nil {
				t.Error(err)
			}
		})))
	defer tasks.Close()

	first := get(t, tasks.URL)
	if got := first.Get(trail.ServedBy); got != "tasks tasks-5d2 - - -" {
		t.Errorf("X-Served-By %q", got)
	}
	if got := first.Get(trail.AuthVerifiedBy); got != "auth auth-7c9 10.0.0.5 node-1 v1" {
		t.Errorf("first X-Auth-Verified-By %q, want auth's pod", got)
	}
	second := get(t, tasks.URL)
	if got := second.Get(trail.AuthVerifiedBy); !strings.HasPrefix(got, "auth auth-7c9 10.0.0.5 node-1 v1; cached ") || !strings.HasSuffix(got, " ago") {
		t.Errorf("second X-Auth-Verified-By %q, want auth's pod and how long ago the cache learnt it", got)
	}
}

func get(t *testing.T, url string) http.Header {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header
}

func TestHereNamesThisProcess(t *testing.T) {
	pod := trail.Here("tasks", "node-7")
	if pod.Service != "tasks" || pod.Name == "" || pod.Node != "node-7" || pod.Version == "" {
		t.Errorf("Here = %+v", pod)
	}
}
