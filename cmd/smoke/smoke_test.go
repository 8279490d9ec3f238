package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is users and tasks as the API contract says they answer, with switches that break
// one behaviour each.
type fake struct {
	mu    sync.Mutex
	tasks []map[string]string
	ids   []string // X-Request-ID of every request, in order

	loginRefused  bool // login answers 401
	storeFails    bool // POST /tasks answers 500
	forgets       bool // GET /tasks does not list what was stored
	openTasks     bool // GET /tasks without a token answers 200
	otherMessage  bool // GET /tasks without a token answers 401 with another message
	htmlTasks     bool // tasks answers an HTML page (a URL that points elsewhere)
	noEcho        bool // X-Request-ID is not echoed
	hangTasks     bool // tasks never answers
	createdAsSent bool // POST /tasks answers a createdTask other than the one sent
	trail         bool // answers name their pods (X-Served-By, X-Auth-Verified-By)
}

const fakeToken = "fake-token"

func (f *fake) servers(t *testing.T) (users, tasks string) {
	t.Helper()
	u := httptest.NewServer(f.record(http.HandlerFunc(f.users)))
	ts := httptest.NewServer(f.record(http.HandlerFunc(f.tasksHandler)))
	t.Cleanup(func() { u.Close(); ts.Close() })
	return u.URL, ts.URL
}

func (f *fake) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.ids = append(f.ids, r.Header.Get(requestIDHeader))
		f.mu.Unlock()
		if id := r.Header.Get(requestIDHeader); id != "" && !f.noEcho {
			w.Header().Set(requestIDHeader, id)
		}
		if f.trail && r.URL.Path == "/login" {
			w.Header().Set("X-Served-By", "users users-7f6-abc 10.244.0.8 node-1 v0.1.0")
		} else if f.trail {
			w.Header().Set("X-Served-By", "tasks tasks-5d2-x7k 10.244.0.7 node-1 v0.1.0")
			w.Header().Set("X-Auth-Verified-By", "auth auth-8f1-q2w 10.244.0.5 node-1 v0.1.0; cached 3s ago")
		}
		next.ServeHTTP(w, r)
	})
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (f *fake) users(w http.ResponseWriter, r *http.Request) {
	var in map[string]string
	if r.Method != http.MethodPost || r.URL.Path != "/login" || json.NewDecoder(r.Body).Decode(&in) != nil {
		reply(w, http.StatusNotFound, map[string]string{"message": "not found"})
		return
	}
	if f.loginRefused || in["email"] != "test@gmail.com" || in["password"] != "testers" {
		reply(w, http.StatusUnauthorized, map[string]string{"message": "Invalid email or password."})
		return
	}
	reply(w, http.StatusOK, map[string]string{"token": fakeToken})
}

func (f *fake) tasksHandler(w http.ResponseWriter, r *http.Request) {
	if f.hangTasks {
		// The server sees the client go away only once it has read the body.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		return
	}
	if f.htmlTasks {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>Welcome to nginx!</body></html>"))
		return
	}
	auth := r.Header.Get("Authorization")
	if r.URL.Path != "/tasks" {
		reply(w, http.StatusNotFound, map[string]string{"message": "not found"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		if auth == "" && !f.openTasks {
			msg := "No token provided."
			if f.otherMessage {
				msg = "Unauthorized"
			}
			reply(w, http.StatusUnauthorized, map[string]string{"message": msg})
			return
		}
		if auth != "" && auth != "Bearer "+fakeToken {
			reply(w, http.StatusUnauthorized, map[string]string{"message": "Could not verify token."})
			return
		}
		f.mu.Lock()
		list := slices.Clone(f.tasks)
		f.mu.Unlock()
		if f.forgets {
			list = nil
		}
		reply(w, http.StatusOK, map[string]any{"message": "Tasks loaded.", "tasks": append([]map[string]string{}, list...)})
	case http.MethodPost:
		if auth != "Bearer "+fakeToken {
			reply(w, http.StatusUnauthorized, map[string]string{"message": "Could not verify token."})
			return
		}
		if f.storeFails {
			reply(w, http.StatusInternalServerError, map[string]string{"message": "Could not store the task."})
			return
		}
		var task map[string]string
		if err := json.NewDecoder(r.Body).Decode(&task); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"message": "bad JSON"})
			return
		}
		f.mu.Lock()
		f.tasks = append(f.tasks, task)
		f.mu.Unlock()
		if f.createdAsSent {
			task = map[string]string{"title": "something else", "text": ""}
		}
		reply(w, http.StatusCreated, map[string]any{"message": "Task stored.", "createdTask": task})
	default:
		reply(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
	}
}

// runSmoke runs the command with args and returns its exit status and output.
func runSmoke(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	t.Logf("smoke %s → %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

var stepLine = regexp.MustCompile(`(?m)^(PASS|FAIL|SKIP)  (\S+)`)

// verdicts maps each step to PASS, FAIL or SKIP as printed.
func verdicts(out string) map[string]string {
	m := map[string]string{}
	for _, match := range stepLine.FindAllStringSubmatch(out, -1) {
		m[match[2]] = match[1]
	}
	return m
}

func TestPassesAgainstACorrectServer(t *testing.T) {
	f := &fake{}
	users, tasks := f.servers(t)
	code, out, _ := runSmoke(t, "--users", users, "--tasks", tasks)
	if code != exitPass {
		t.Fatalf("exit %d, want 0", code)
	}
	want := map[string]string{"login": "PASS", "create-task": "PASS", "find-task": "PASS", "no-token": "PASS"}
	if got := verdicts(out); !maps(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	if !regexp.MustCompile(`(?m)^smoke: PASS, 4 of 4 steps passed in \S+$`).MatchString(out) {
		t.Errorf("no summary line saying PASS")
	}
	// Every step line carries its time.
	if n := len(regexp.MustCompile(`(?m)^PASS  \S+ +[0-9.]+m?s  `).FindAllString(out, -1)); n != 4 {
		t.Errorf("%d step lines with a duration, want 4", n)
	}
	if strings.Contains(out, fakeToken) {
		t.Errorf("the output shows the token")
	}
	if len(f.tasks) != 1 || !strings.HasPrefix(f.tasks[0]["title"], "smoke ") {
		t.Errorf("stored %v, want one task titled smoke …", f.tasks)
	}
	// Titles are unique per run, so a second run finds its own task, not the first one's.
	if code, _, _ := runSmoke(t, "--users", users, "--tasks", tasks); code != exitPass || len(f.tasks) != 2 || f.tasks[0]["title"] == f.tasks[1]["title"] {
		t.Errorf("second run: exit %d, tasks %v", code, f.tasks)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFailsAndNamesTheStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*fake)
		want   map[string]string
		say    string // in the FAIL line
	}{
		{"login refused", func(f *fake) { f.loginRefused = true },
			map[string]string{"login": "FAIL", "create-task": "SKIP", "find-task": "SKIP", "no-token": "PASS"},
			`got 401 {"message":"Invalid email or password."}, want 200 with a token (is the demo user switched off`},
		{"store fails", func(f *fake) { f.storeFails = true },
			map[string]string{"login": "PASS", "create-task": "FAIL", "find-task": "SKIP", "no-token": "PASS"},
			`POST /tasks: got 500 {"message":"Could not store the task."}, want 201 "Task stored."`},
		{"createdTask differs", func(f *fake) { f.createdAsSent = true },
			map[string]string{"login": "PASS", "create-task": "FAIL", "find-task": "SKIP", "no-token": "PASS"},
			`createdTask is map[text: title:something else]`},
		{"task not listed", func(f *fake) { f.forgets = true },
			map[string]string{"login": "PASS", "create-task": "PASS", "find-task": "FAIL", "no-token": "PASS"},
			`GET /tasks: 200 with 0 tasks, but not "smoke `},
		{"tasks open without a token", func(f *fake) { f.openTasks = true },
			map[string]string{"login": "PASS", "create-task": "PASS", "find-task": "PASS", "no-token": "FAIL"},
			`GET /tasks without a token: got 200 {"message":"Tasks loaded."`},
		{"401 with another message", func(f *fake) { f.otherMessage = true },
			map[string]string{"login": "PASS", "create-task": "PASS", "find-task": "PASS", "no-token": "FAIL"},
			`got 401 {"message":"Unauthorized"}, want 401 "No token provided."`},
		{"tasks URL is some web page", func(f *fake) { f.htmlTasks = true },
			map[string]string{"login": "PASS", "create-task": "FAIL", "find-task": "SKIP", "no-token": "FAIL"},
			`got 200 <html><body>Welcome to nginx!</body></html>, which is not a JSON object: is this URL the tasks service?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{}
			tc.break_(f)
			users, tasks := f.servers(t)
			code, out, _ := runSmoke(t, "--users", users, "--tasks", tasks)
			if code != exitFail {
				t.Errorf("exit %d, want 1", code)
			}
			if got := verdicts(out); !maps(got, tc.want) {
				t.Errorf("steps %v, want %v", got, tc.want)
			}
			if !strings.Contains(out, tc.say) {
				t.Errorf("output does not say %q", tc.say)
			}
			var failed []string
			for _, st := range steps { // in the order they run, as the summary lists them
				if tc.want[st.name] == "FAIL" {
					failed = append(failed, st.name)
				}
			}
			if !regexp.MustCompile(`(?m)^smoke: FAIL, .*failed \(` + strings.Join(failed, ", ") + `\)`).MatchString(out) {
				t.Errorf("summary does not name the failed step %v", failed)
			}
		})
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	// A port that nothing listens on: taken, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	start := time.Now()
	code, out, _ := runSmoke(t, "--users", closed, "--tasks", closed)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s with nothing listening, want under 2s", took)
	}
	if code != exitFail {
		t.Errorf("exit %d, want 1", code)
	}
	want := map[string]string{"login": "FAIL", "create-task": "SKIP", "find-task": "SKIP", "no-token": "FAIL"}
	if got := verdicts(out); !maps(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	for _, say := range []string{"cannot reach users at " + l.Addr().String() + ": connection refused", "Is it running (make run, make up, kubectl get pods)", "cannot reach tasks at"} {
		if !strings.Contains(out, say) {
			t.Errorf("output does not say %q", say)
		}
	}
}

func TestNoAnswerIsBoundedByTimeout(t *testing.T) {
	f := &fake{hangTasks: true}
	users, tasks := f.servers(t)
	start := time.Now()
	code, out, _ := runSmoke(t, "--users", users, "--tasks", tasks, "--timeout", "300ms")
	took := time.Since(start)
	if code != exitFail {
		t.Errorf("exit %d, want 1", code)
	}
	// One timeout, not one per step: the other tasks steps are skipped once tasks did not answer.
	if took > 2*time.Second {
		t.Errorf("took %s with --timeout 300ms, want one timeout's worth", took)
	}
	want := map[string]string{"login": "PASS", "create-task": "FAIL", "find-task": "SKIP", "no-token": "SKIP"}
	if got := verdicts(out); !maps(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	for _, say := range []string{"no answer from tasks at", "within 300ms", "tasks is unreachable (see create-task)"} {
		if !strings.Contains(out, say) {
			t.Errorf("output does not say %q", say)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	f := &fake{}
	users, tasks := f.servers(t)
	code, out, _ := runSmoke(t, "--users", users, "--tasks", tasks, "--request-id", "lesson-3")
	if code != exitPass {
		t.Fatalf("exit %d, want 0", code)
	}
	want := []string{"lesson-3-login", "lesson-3-create-task", "lesson-3-find-task", "lesson-3-no-token"}
	if !slices.Equal(f.ids, want) {
		t.Errorf("X-Request-ID sent %q, want %q", f.ids, want)
	}
	for _, id := range want {
		if !regexp.MustCompile(`(?m)^PASS .*  request-id=` + id + `$`).MatchString(out) {
			t.Errorf("no step line ends with request-id=%s", id)
		}
	}

	// Without the flag no id is sent; a service that makes one up still has it shown.
	f = &fake{}
	users, tasks = f.servers(t)
	runSmoke(t, "--users", users, "--tasks", tasks)
	if !slices.Equal(f.ids, []string{"", "", "", ""}) {
		t.Errorf("X-Request-ID sent without --request-id: %q", f.ids)
	}
	if idNote("", "ABC") != "  request-id=ABC" || idNote("p-login", "XYZ") != "  request-id=XYZ (sent p-login)" {
		t.Errorf("idNote does not show the id the service answered with")
	}

	// A service that does not echo the id: the one sent is still shown.
	f = &fake{noEcho: true}
	users, tasks = f.servers(t)
	_, out, _ = runSmoke(t, "--users", users, "--tasks", tasks, "--request-id", "x")
	if !strings.Contains(out, "request-id=x-login\n") {
		t.Errorf("the id sent is not shown when the service does not echo it")
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		say  string
	}{
		{[]string{"--tasks", "http://localhost:8000"}, "--users is required"},
		{[]string{"--users", "http://localhost:8080"}, "--tasks is required"},
		{[]string{"--users", "ftp://x", "--tasks", "http://localhost:8000"}, "must start with http:// or https://"},
		{[]string{"--users", "http://localhost:8080?a=b", "--tasks", "http://localhost:8000"}, "no query"},
		{[]string{"--users", "http://x", "--tasks", "http://y", "--timeout", "0s"}, "--timeout must be above zero"},
		{[]string{"--users", "http://x", "--tasks", "http://y", "--timeout", "soon"}, "invalid value"},
		{[]string{"--users", "http://x", "--tasks", "http://y", "--request-id", "has space"}, "--request-id"},
		{[]string{"--users", "http://x", "--tasks", "http://y", "--request-id", strings.Repeat("a", 101)}, "--request-id"},
		{[]string{"--users", "http://x", "--tasks", "http://y", "--password", ""}, "must not be empty"},
		{[]string{"--users", "http://x", "--tasks", "http://y", "extra"}, `unexpected argument "extra"`},
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
	} {
		code, out, errOut := runSmoke(t, tc.args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if out != "" {
			t.Errorf("%q: ran steps: %q", tc.args, out)
		}
		if !strings.Contains(errOut, tc.say) {
			t.Errorf("%q: stderr does not say %q", tc.args, tc.say)
		}
	}
	if code, _, errOut := runSmoke(t, "-h"); code != exitPass || !strings.Contains(errOut, "minikube service users-service --url") {
		t.Errorf("-h: exit %d, want 0 and the usage", code)
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:8080":             "http://localhost:8080",
		"http://127.0.0.1:8000/":     "http://127.0.0.1:8000",
		" http://192.168.49.2:30080": "http://192.168.49.2:30080",
		"https://example.com/kub/":   "https://example.com/kub",
	} {
		if got, err := baseURL("users", in); err != nil || got != want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestEachStepSaysWhichPodsAnswered: the pods the answers name are on each step's line, the
// one that failed too (a lab control's 500 says which pod it came from).
func TestEachStepSaysWhichPodsAnswered(t *testing.T) {
	f := &fake{trail: true, storeFails: true}
	users, tasks := f.servers(t)
	_, out, _ := runSmoke(t, "--users", users, "--tasks", tasks)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^PASS  login .*  via users users-7f6-abc$`),
		regexp.MustCompile(`(?m)^FAIL  create-task .*Could not store the task.*  via tasks tasks-5d2-x7k → auth auth-8f1-q2w \(cached 3s ago\)$`),
		regexp.MustCompile(`(?m)^PASS  no-token .*  via tasks tasks-5d2-x7k → auth auth-8f1-q2w \(cached 3s ago\)$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("no line matching %s in:\n%s", want, out)
		}
	}
	// Without the headers (SERVED_BY=false), nothing is added.
	plainUsers, plainTasks := (&fake{}).servers(t)
	_, out, _ = runSmoke(t, "--users", plainUsers, "--tasks", plainTasks)
	if strings.Contains(out, " via ") {
		t.Errorf("a line names pods the answers did not:\n%s", out)
	}
}
