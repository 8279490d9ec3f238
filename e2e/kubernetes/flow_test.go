package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// httpDo sends one request with a 5s deadline and returns the status and body.
func httpDo(t *testing.T, method, url, token string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

type task struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// login returns a token for the user, failing t unless users answers 200.
func login(t *testing.T, usersURL, email, password string) string {
	t.Helper()
	status, body := httpDo(t, "POST", usersURL+"/login", "", map[string]string{"email": email, "password": password})
	if status != 200 {
		t.Fatalf("POST /login %s: %d %s", email, status, body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Token == "" {
		t.Fatalf("POST /login: no token in %s", body)
	}
	return out.Token
}

// listTasks GETs /tasks and fails t unless the answer is the contract's 200.
func listTasks(t *testing.T, tasksURL, token string) []task {
	t.Helper()
	status, body := httpDo(t, "GET", tasksURL+"/tasks", token, nil)
	if status != 200 {
		t.Fatalf("GET /tasks: %d %s", status, body)
	}
	var out struct {
		Message string
		Tasks   []task
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Message != "Tasks loaded." {
		t.Fatalf("GET /tasks: %s (%v)", body, err)
	}
	return out.Tasks
}

// The course's flow through every manifest set, with the real binaries in the
// environment the kubelet would give them (cluster_test.go says what is mapped):
// log in as the demo user at users-service, store a task at tasks-service with the
// token, and read it back.
func TestFlowThroughManifests(t *testing.T) {
	for _, dir := range manifestSets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			set := loadSet(t, dir)
			claims := map[string]string{}
			vc := newCluster(t, set, claims)
			vc.start(t)
			vc.probe(t)

			users, tasks := vc.publicURL(t, "users-service"), vc.publicURL(t, "tasks-service")
			token := login(t, users, "test@gmail.com", "testers")

			want := task{Title: "Kubernetes " + filepath.Base(dir), Text: "through " + dir}
			status, body := httpDo(t, "POST", tasks+"/tasks", token, want)
			if status != 201 || !strings.Contains(body, `"Task stored."`) {
				t.Fatalf("POST /tasks: %d %s", status, body)
			}
			got := listTasks(t, tasks, token)
			if len(got) != 1 || got[0] != want {
				t.Fatalf("GET /tasks: %+v, want [%+v]", got, want)
			}
			if status, body := httpDo(t, "GET", tasks+"/tasks", "", nil); status != 401 {
				t.Errorf("GET /tasks without a token: %d %s, want 401", status, body)
			}
		})
	}
}

// deploy/k8s keeps users and tasks data on PersistentVolumeClaims: a replaced pod
// (here: new processes on the same claim folders, new loopback ports) still has
// the accounts and tasks of the old one.
func TestDataSurvivesPodReplacement(t *testing.T) {
	set := loadSet(t, "deploy/k8s")
	claims := map[string]string{}
	want := task{Title: "survives", Text: "a rollout"}
	email, password := "learner@example.com", "kubernetes"

	func() {
		first := newCluster(t, set, claims)
		first.start(t)
		users, tasks := first.publicURL(t, "users-service"), first.publicURL(t, "tasks-service")
		if status, body := httpDo(t, "POST", users+"/signup", "", map[string]string{"email": email, "password": password}); status != 201 {
			t.Fatalf("POST /signup: %d %s", status, body)
		}
		token := login(t, users, email, password)
		if status, body := httpDo(t, "POST", tasks+"/tasks", token, want); status != 201 {
			t.Fatalf("POST /tasks: %d %s", status, body)
		}
		for _, p := range first.pods {
			for _, c := range p.Containers {
				if err := c.Proc.Stop(); err != nil { // SIGTERM, as in a rollout
					t.Fatalf("%s/%s: %v", p.Deployment.Name, c.C.Name, err)
				}
			}
		}
	}()
	if len(claims) != 2 {
		t.Fatalf("claims %v, want users-data and tasks-data", claims)
	}

	second := newCluster(t, set, claims)
	second.start(t)
	token := login(t, second.publicURL(t, "users-service"), email, password)
	got := listTasks(t, second.publicURL(t, "tasks-service"), token)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("after replacement GET /tasks: %+v, want [%+v]", got, want)
	}
}
