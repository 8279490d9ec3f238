package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/e2e/cluster/loadreport"
)

// fakeAPI is users and tasks in one in-memory server: signup, login (the token is the
// email), and each account's tasks. lose makes it drop the n-th stored task from every
// list afterwards; fail makes it answer the n-th POST /tasks with a 503.
type fakeAPI struct {
	mu       sync.Mutex
	accounts map[string]string
	tasks    map[string][]string
	posts    int
	lose     int
	fail     int
	lost     string
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{accounts: map[string]string{}, tasks: map[string][]string{}}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]string
	json.NewDecoder(r.Body).Decode(&body)
	owner := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch r.Method + " " + r.URL.Path {
	case "POST /signup":
		f.accounts[body["email"]] = body["password"]
		w.WriteHeader(http.StatusCreated)
	case "POST /login":
		if f.accounts[body["email"]] != body["password"] {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"token": body["email"]})
	case "POST /tasks":
		f.posts++
		if f.posts == f.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if f.posts == f.lose {
			f.lost = body["title"]
		}
		f.tasks[owner] = append(f.tasks[owner], body["title"])
		w.WriteHeader(http.StatusCreated)
	case "GET /tasks":
		var answer struct {
			Tasks []map[string]string `json:"tasks"`
		}
		for _, title := range f.tasks[owner] {
			if title != f.lost {
				answer.Tasks = append(answer.Tasks, map[string]string{"title": title})
			}
		}
		json.NewEncoder(w).Encode(answer)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// runLoad runs the load against api for a few iterations and returns its report.
func runLoad(t *testing.T, api http.Handler) loadreport.Report {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	l := newLoad(config{usersURL: srv.URL, tasksURL: srv.URL, clients: 3, period: 5 * time.Millisecond,
		rounds: 4, maxLogins: 2, maxRun: time.Minute, tasksPerAccount: 10})
	if err := l.start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.report().Login.Sent < 30; {
		if time.Now().After(deadline) {
			t.Fatalf("the load did not go on: %+v", l.report())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return l.stop()
}

func TestLoadCountsWhatItSent(t *testing.T) {
	r := runLoad(t, newFakeAPI())
	if r.Failed() != 0 || len(r.Failures) != 0 {
		t.Errorf("failures against a server that answers everything: %+v", r)
	}
	if r.Create.Sent < 30 || r.List.Sent != r.Create.Sent || r.Acknowledged != r.Create.Sent || r.Listed != r.Acknowledged {
		t.Errorf("POSTs %d, GETs %d, acknowledged %d, listed %d: every POST is followed by a GET, acknowledged and listed",
			r.Create.Sent, r.List.Sent, r.Acknowledged, r.Listed)
	}
	// 10 tasks per account: the clients signed up new ones as they went.
	if r.Signup.Sent <= 3 {
		t.Errorf("%d signups: the clients did not move to new accounts after 10 tasks", r.Signup.Sent)
	}
	if r.Running || r.Seconds <= 0 {
		t.Errorf("a stopped run: running %t, %.3fs", r.Running, r.Seconds)
	}
}

func TestLoadReportsAFailedRequest(t *testing.T) {
	api := newFakeAPI()
	api.fail = 7
	r := runLoad(t, api)
	if r.Create.Failed != 1 || r.Failed() != 1 || len(r.Failures) != 1 || !strings.Contains(r.Failures[0], "POST /tasks (X-Request-ID load-c") {
		t.Errorf("one POST answered 503: %+v", r)
	}
	if r.Listed != r.Acknowledged {
		t.Errorf("the task of the failed POST counted as acknowledged: %+v", r)
	}
}

func TestLoadReportsALostTask(t *testing.T) {
	api := newFakeAPI()
	api.lose = 5
	r := runLoad(t, api)
	if r.MissingCount != 1 || len(r.Missing) != 1 || r.Missing[0] != api.lost || r.Listed != r.Acknowledged-1 {
		t.Errorf("one acknowledged task (%q) dropped from the lists: %+v", api.lost, r)
	}
	// The GET right after its POST saw it missing too.
	if r.List.Failed != 1 {
		t.Errorf("GET /tasks after the lost task's POST: %d failed, want 1", r.List.Failed)
	}
}

// TestLoadTalliesThePodsTheTrailNames: answers from two tasks pods, verified by two auth pods
// (one of them through the cache), are counted by pod.
func TestLoadTalliesThePodsTheTrailNames(t *testing.T) {
	api := newFakeAPI()
	var n atomic.Int64
	r := runLoad(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		i := n.Add(1)
		w.Header().Set("X-Served-By", fmt.Sprintf("tasks tasks-%d 10.0.0.%d node-1 v1", i%2, i%2))
		if req.URL.Path == "/tasks" {
			w.Header().Set("X-Auth-Verified-By", fmt.Sprintf("auth auth-%d 10.0.1.%d node-1 v1", i%2, i%2)+[]string{"", "; cached 2s ago"}[i%2])
		}
		api.ServeHTTP(w, req)
	}))
	if got := r.PodsOf("tasks"); !slices.Equal(got, []string{"tasks-0", "tasks-1"}) {
		t.Errorf("tasks pods %q, want tasks-0 and tasks-1", got)
	}
	if got := r.PodsOf("auth"); !slices.Equal(got, []string{"auth-0", "auth-1"}) {
		t.Errorf("auth pods %q, want auth-0 and auth-1 (the cached verification names its pod too)", got)
	}
	if total := r.Pods["tasks tasks-0"] + r.Pods["tasks tasks-1"]; total != int(n.Load()) {
		t.Errorf("%d answers counted by the pod that served them, of %d", total, n.Load())
	}
}
