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

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/tasks/internal/filestore"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
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
	store, err := filestore.Open(folder, log, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Routes(Deps{Log: log, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Tasks: store, Auth: auth}))
	t.Cleanup(func() { srv.Close(); store.Close() })
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

// TestAPI: every row of the contract, each against a store of its own, so that no case
// depends on another having run.
func TestAPI(t *testing.T) {
	tests := []struct {
		name, method, path, authorization, body string
		wantStatus                              int
		wantMessage                             string
	}{
		{"list empty", "GET", "/tasks", "Bearer good", "", 200, "Tasks loaded."},
		{"store", "POST", "/tasks", "Bearer good", `{"title":"Buy milk","text":"2 litres"}`, 201, "Task stored."},
		{"store without text", "POST", "/tasks", "Bearer good", `{"title":"Call Bob"}`, 201, "Task stored."},
		{"bearer is case-insensitive", "POST", "/tasks", "bearer good", `{"title":"Third"}`, 201, "Task stored."},
		{"path in another case, with a slash", "POST", "/Tasks/", "Bearer good", `{"title":"Express"}`, 201, "Task stored."},
		{"list without header", "GET", "/tasks", "", "", 401, "No token provided."},
		{"list with a bad token", "GET", "/tasks", "Bearer bad", "", 401, "Could not verify token."},
		{"list with another scheme", "GET", "/tasks", "Basic dXNlcjpwdw==", "", 401, "Could not verify token."},
		{"list with Bearer and no token", "GET", "/tasks", "Bearer", "", 401, "Could not verify token."},
		{"list with extra parts", "GET", "/tasks", "Bearer good extra", "", 401, "Could not verify token."},
		{"list with a token of 30,000 <", "GET", "/tasks", "Bearer " + strings.Repeat("<", 30_000), "", 401, "Could not verify token."},
		{"store without header", "POST", "/tasks", "", `{"title":"x"}`, 401, "Could not verify token."},
		{"store with a bad token", "POST", "/tasks", "Bearer bad", `{"title":"x"}`, 401, "Could not verify token."},
		{"store without title", "POST", "/tasks", "Bearer good", `{"text":"x"}`, 422, "A title needs to be specified!"},
		{"store with blank title", "POST", "/tasks", "Bearer good", `{"title":"  ","text":"x"}`, 422, "A title needs to be specified!"},
		{"store a title of 501 characters", "POST", "/tasks", "Bearer good", `{"title":"` + strings.Repeat("é", 501) + `"}`, 422, "A title can have at most 500 characters."},
		{"store a text of 10001 characters", "POST", "/tasks", "Bearer good", `{"title":"t","text":"` + strings.Repeat("x", 10001) + `"}`, 422, "A text can have at most 10000 characters."},
		{"store 3,000 control characters (18 KB stored)", "POST", "/tasks", "Bearer good", `{"title":"t","text":"` + strings.Repeat(`\u0001`, 3000) + `"}`, 413, ""},
		{"store broken JSON", "POST", "/tasks", "Bearer good", `{"title":`, 400, ""},
		{"store title of the wrong type", "POST", "/tasks", "Bearer good", `{"title":["x"]}`, 400, ""},
		{"store over 64 KiB", "POST", "/tasks", "Bearer good", `{"title":"` + strings.Repeat("x", 1<<20) + `"}`, 413, ""},
		{"unknown route", "GET", "/nope", "Bearer good", "", 404, ""},
		{"wrong method", "DELETE", "/tasks", "Bearer good", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			folder := t.TempDir()
			srv := newTasks(t, folder, acceptsGood)
			got := call(t, tt.method, srv.URL+tt.path, tt.authorization, tt.body)
			msg, _ := got.body["message"].(string)
			if got.status != tt.wantStatus || msg == "" || (tt.wantMessage != "" && msg != tt.wantMessage) {
				t.Fatalf("got %d %.200s, want %d %q", got.status, got.raw, tt.wantStatus, tt.wantMessage)
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
			raw, _ := os.ReadFile(filepath.Join(folder, "tasks.txt"))
			if stored := strings.Count(string(raw), "TASK_SPLIT"); (got.status == 201) != (stored == 1) {
				t.Errorf("answered %d and tasks.txt holds %d records", got.status, stored)
			}
		})
	}
}

// TestAnswersAreTheOriginalsBytes: the list and the created task, byte for byte what the
// original answered (JSON.stringify: no newline at the end, <>& as they are).
func TestAnswersAreTheOriginalsBytes(t *testing.T) {
	srv := newTasks(t, t.TempDir(), acceptsGood)
	for _, body := range []string{`{"title":"Buy milk","text":"2 litres"}`, `{"title":"Call Bob"}`, `{"title":"<b>Third</b> & co"}`} {
		call(t, "POST", srv.URL+"/tasks", "Bearer good", body)
	}
	got := call(t, "GET", srv.URL+"/tasks", "Bearer good", "")
	want := `{"message":"Tasks loaded.","tasks":[{"title":"Buy milk","text":"2 litres"},{"title":"Call Bob","text":""},{"title":"<b>Third</b> & co","text":""}]}`
	if got.raw != want {
		t.Fatalf("list =\n%s\nwant\n%s", got.raw, want)
	}
	created := call(t, "POST", srv.URL+"/tasks", "Bearer good", `{"title":"Fourth","text":"t","extra":1}`)
	if want := `{"message":"Task stored.","createdTask":{"title":"Fourth","text":"t"}}`; created.raw != want {
		t.Errorf("created =\n%s\nwant\n%s", created.raw, want)
	}
}

// TestUsersSeeOnlyTheirOwnTasks: two users' lists through the API; the original's tasks
// (no owner) are everybody's.
func TestUsersSeeOnlyTheirOwnTasks(t *testing.T) {
	folder := t.TempDir()
	os.WriteFile(filepath.Join(folder, "tasks.txt"), []byte(`{"title":"from the original","text":""}TASK_SPLIT`), 0o644)
	twoUsers := &fakeVerifier{verifyToken: func(_ context.Context, token string) (string, error) {
		if token == "alice" || token == "bob" {
			return "uid-" + token, nil
		}
		return "", authapi.ErrRejected
	}}
	srv := newTasks(t, folder, twoUsers)
	call(t, "POST", srv.URL+"/tasks", "Bearer alice", `{"title":"bank PIN 1234"}`)
	call(t, "POST", srv.URL+"/tasks", "Bearer bob", `{"title":"bob's"}`)
	for user, want := range map[string]string{
		"alice": `[{"title":"from the original","text":""},{"title":"bank PIN 1234","text":""}]`,
		"bob":   `[{"title":"from the original","text":""},{"title":"bob's","text":""}]`,
	} {
		got := call(t, "GET", srv.URL+"/tasks", "Bearer "+user, "")
		if got.raw != `{"message":"Tasks loaded.","tasks":`+want+`}` {
			t.Errorf("%s sees %s, want the tasks %s", user, got.raw, want)
		}
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
		if got.status != tt.wantStatus || (tt.wantBody != "" && got.raw != tt.wantBody) {
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
