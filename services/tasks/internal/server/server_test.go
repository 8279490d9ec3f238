package server

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
	"testing"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/tasks/internal/store"
)

// fakeVerifier stands in for the auth service, the boundary of this one.
type fakeVerifier struct {
	verifyToken func(ctx context.Context, token string) (string, error)
}

var _ Verifier = (*fakeVerifier)(nil)

func (f *fakeVerifier) VerifyToken(ctx context.Context, token string) (string, error) {
	return f.verifyToken(ctx, token)
}

// acceptsGood accepts the token "good" only.
var acceptsGood = &fakeVerifier{verifyToken: func(_ context.Context, token string) (string, error) {
	if token == "good" {
		return "user-1", nil
	}
	return "", authapi.ErrRejected
}}

var authDown = &fakeVerifier{verifyToken: func(context.Context, string) (string, error) {
	return "", authapi.ErrUnavailable
}}

func newTasks(t *testing.T, folder string, auth Verifier) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	tasks, err := store.Open(folder, log, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Routes(log, &httpserver.Probes{}, metrics.New(), tasks, auth))
	t.Cleanup(func() { srv.Close(); tasks.Close() })
	return srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, authorization, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object", method, url, raw)
		}
	}
	return a
}

func TestAPI(t *testing.T) {
	folder := t.TempDir()
	srv := newTasks(t, folder, acceptsGood)
	url := srv.URL + "/tasks"
	tests := []struct {
		name, method, authorization, body string
		wantStatus                        int
		wantMessage                       string
	}{
		{"list empty", "GET", "Bearer good", "", 200, "Tasks loaded."},
		{"store", "POST", "Bearer good", `{"title":"Buy milk","text":"2 litres"}`, 201, "Task stored."},
		{"store without text", "POST", "Bearer good", `{"title":"Call Bob"}`, 201, "Task stored."},
		{"bearer is case-insensitive", "POST", "bearer good", `{"title":"Third"}`, 201, "Task stored."},
		{"list without header", "GET", "", "", 401, "No token provided."},
		{"list with a bad token", "GET", "Bearer bad", "", 401, "Could not verify token."},
		{"list with another scheme", "GET", "Basic dXNlcjpwdw==", "", 401, "Could not verify token."},
		{"list with Bearer and no token", "GET", "Bearer", "", 401, "Could not verify token."},
		{"list with extra parts", "GET", "Bearer good extra", "", 401, "Could not verify token."},
		{"store without header", "POST", "", `{"title":"x"}`, 401, "Could not verify token."},
		{"store with a bad token", "POST", "Bearer bad", `{"title":"x"}`, 401, "Could not verify token."},
		{"store without title", "POST", "Bearer good", `{"text":"x"}`, 422, "A title needs to be specified!"},
		{"store with blank title", "POST", "Bearer good", `{"title":"  ","text":"x"}`, 422, "A title needs to be specified!"},
		{"store a title of 501 characters", "POST", "Bearer good", `{"title":"` + strings.Repeat("é", 501) + `"}`, 422, "A title can have at most 500 characters."},
		{"store a text of 10001 characters", "POST", "Bearer good", `{"title":"t","text":"` + strings.Repeat("x", 10001) + `"}`, 422, "A text can have at most 10000 characters."},
		{"store broken JSON", "POST", "Bearer good", `{"title":`, 400, ""},
		{"store title of the wrong type", "POST", "Bearer good", `{"title":["x"]}`, 400, ""},
		{"store over 1 MiB", "POST", "Bearer good", `{"title":"` + strings.Repeat("x", 1<<20) + `"}`, 413, ""},
		{"unknown route", "GET", "Bearer good", "", 404, ""},
		{"wrong method", "DELETE", "Bearer good", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := url
			if tt.name == "unknown route" {
				target = srv.URL + "/nope"
			}
			got := call(t, tt.method, target, tt.authorization, tt.body)
			msg, _ := got.body["message"].(string)
			if got.status != tt.wantStatus || msg == "" || (tt.wantMessage != "" && msg != tt.wantMessage) {
				t.Fatalf("got %d %s, want %d %q", got.status, got.raw, tt.wantStatus, tt.wantMessage)
			}
			for header, want := range map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "POST,GET,OPTIONS",
				"Access-Control-Allow-Headers": "Content-Type,Authorization",
			} {
				if got.header.Get(header) != want {
					t.Errorf("%s = %q, want %q", header, got.header.Get(header), want)
				}
			}
		})
	}

	got := call(t, "GET", url, "Bearer good", "")
	want := `{"message":"Tasks loaded.","tasks":[{"title":"Buy milk","text":"2 litres"},{"title":"Call Bob","text":""},{"title":"Third","text":""}]}`
	if strings.TrimSpace(got.raw) != want {
		t.Fatalf("list =\n%s\nwant\n%s", got.raw, want)
	}
	created := call(t, "POST", url, "Bearer good", `{"title":"Fourth","text":"t","extra":1}`)
	if c, _ := json.Marshal(created.body["createdTask"]); string(c) != `{"text":"t","title":"Fourth"}` {
		t.Errorf("createdTask = %s", c)
	}
	raw, _ := os.ReadFile(filepath.Join(folder, "tasks.txt"))
	if strings.Count(string(raw), "TASK_SPLIT") != 4 {
		t.Errorf("tasks.txt holds %q; refused requests must not write", raw)
	}
}

func TestPaging(t *testing.T) {
	srv := newTasks(t, t.TempDir(), acceptsGood)
	for i := range 5 {
		if got := call(t, "POST", srv.URL+"/tasks", "Bearer good", fmt.Sprintf(`{"title":"t%d"}`, i)); got.status != 201 {
			t.Fatal(got.raw)
		}
	}
	tests := []struct {
		query      string
		wantStatus int
		wantBody   string
	}{
		{"?limit=2", 200, `{"message":"Tasks loaded.","tasks":[{"title":"t0","text":""},{"title":"t1","text":""}],"total":5,"offset":0,"limit":2}`},
		{"?limit=2&offset=2", 200, `{"message":"Tasks loaded.","tasks":[{"title":"t2","text":""},{"title":"t3","text":""}],"total":5,"offset":2,"limit":2}`},
		{"?limit=2&offset=4", 200, `{"message":"Tasks loaded.","tasks":[{"title":"t4","text":""}],"total":5,"offset":4,"limit":2}`},
		{"?offset=9", 200, `{"message":"Tasks loaded.","tasks":[],"total":5,"offset":9,"limit":1000}`},
		{"?limit=0", 400, ""},
		{"?limit=1001", 400, ""},
		{"?limit=x", 400, ""},
		{"?offset=-1", 400, ""},
	}
	for _, tt := range tests {
		got := call(t, "GET", srv.URL+"/tasks"+tt.query, "Bearer good", "")
		if got.status != tt.wantStatus || (tt.wantBody != "" && strings.TrimSpace(got.raw) != tt.wantBody) {
			t.Errorf("GET /tasks%s = %d %s, want %d %s", tt.query, got.status, got.raw, tt.wantStatus, tt.wantBody)
		}
	}
}

func TestPreflightIsAnswered(t *testing.T) {
	srv := newTasks(t, t.TempDir(), acceptsGood)
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/tasks", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") != "POST,GET,OPTIONS" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAuthDownIs503NotA401(t *testing.T) {
	srv := newTasks(t, t.TempDir(), authDown)
	for _, method := range []string{"GET", "POST"} {
		got := call(t, method, srv.URL+"/tasks", "Bearer good", `{"title":"x"}`)
		if got.status != 503 || got.body["message"] == "" {
			t.Errorf("%s with auth down: %d %s, want 503 with a message", method, got.status, got.raw)
		}
	}
}
