package local

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/harness/scrape"
)

// logLines returns the JSON log lines of p that carry requestId id.
func logLines(t *testing.T, p *harness.Process, id string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(p.SettledLogs(), "\n") {
		var entry map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("%s logged a line that is not one JSON object: %q", p.Name, line)
		}
		if entry["requestId"] == id {
			lines = append(lines, entry)
		}
	}
	return lines
}

func send(t *testing.T, method, url, token, requestID, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-ID", requestID)
	}
	resp, err := harness.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestOneRequestIDAcrossServices follows one id from the client through tasks (or users)
// and into auth: returned to the client, and in the log lines of both services.
func TestOneRequestIDAcrossServices(t *testing.T) {
	// Every request of tasks calls auth (no verified-token cache), so that each one's id
	// can be followed into auth's log.
	s := startSystem(t, func(auth *harness.Process) []string { return append(byAuthAddress(auth), "AUTH_VERIFY_CACHE=0") })
	login := send(t, "POST", s.users.URL+"/login", "", "learner-login-1",
		`{"email":"`+harness.DemoEmail+`","password":"`+harness.DemoPassword+`"}`)
	if login.Header.Get("X-Request-ID") != "learner-login-1" {
		t.Fatalf("users answered X-Request-ID %q", login.Header.Get("X-Request-ID"))
	}
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)

	post := send(t, "POST", s.tasks.URL+"/tasks", token, "learner-post-1", `{"title":"traced"}`)
	if post.StatusCode != http.StatusCreated || post.Header.Get("X-Request-ID") != "learner-post-1" {
		t.Fatalf("POST /tasks: %d, X-Request-ID %q", post.StatusCode, post.Header.Get("X-Request-ID"))
	}
	// No id sent: one is made, returned, and used downstream too.
	get := send(t, "GET", s.tasks.URL+"/tasks", token, "", "")
	made := get.Header.Get("X-Request-ID")
	if made == "" {
		t.Fatal("GET /tasks without X-Request-ID got none back")
	}

	// A service writes its access log line just after the answer is sent: give it a moment.
	waitForLogLine := func(p *harness.Process, id string) []map[string]any {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if lines := logLines(t, p, id); len(lines) > 0 || time.Now().After(deadline) {
				return lines
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, path := range []struct {
		id              string
		front           *harness.Process
		frontPath, auth string
	}{
		{"learner-login-1", s.users, "/login", "/token"},
		{"learner-post-1", s.tasks, "/tasks", "/verify-token"},
		{made, s.tasks, "/tasks", "/verify-token"},
	} {
		front, auth := waitForLogLine(path.front, path.id), waitForLogLine(s.auth, path.id)
		if len(front) == 0 || front[0]["path"] != path.frontPath {
			t.Errorf("%s has no log line for request %s: %v", path.front.Name, path.id, front)
		}
		if len(auth) == 0 || auth[0]["path"] != path.auth {
			t.Errorf("auth has no log line for request %s (expected %s): %v", path.id, path.auth, auth)
		}
	}
}

// TestMetricsAreScrapedAndParse scrapes every service after the course's flow and finds the
// requests, the calls to auth and the stored records counted.
func TestMetricsAreScrapedAndParse(t *testing.T) {
	s := startSystem(t, byAuthAddress)
	token, _ := harness.Flow(t, s.users.URL, s.tasks.URL)
	for range 3 {
		harness.Call(t, "POST", s.tasks.URL+"/tasks", token, map[string]string{"title": "counted"})
	}
	harness.Call(t, "GET", s.tasks.URL+"/tasks", "", nil) // a 401

	type want struct {
		name    string
		labels  map[string]string
		atLeast float64
	}
	for _, check := range []struct {
		p     *harness.Process
		wants []want
	}{
		{s.tasks, []want{
			{"http_requests_total", map[string]string{"route": "/tasks", "method": "POST", "code": "201"}, 4},
			{"http_requests_total", map[string]string{"route": "/tasks", "method": "GET", "code": "401"}, 2},
			{"http_request_duration_seconds", map[string]string{"route": "/tasks", "method": "GET"}, 3},
			// The flow's POST and GET, and 3 POSTs, with one token: auth verifies it once, and
			// the verified-token cache answers the rest.
			{"auth_client_requests_total", map[string]string{"call": "/verify-token", "outcome": "ok"}, 1},
			{"auth_client_requests_total", map[string]string{"call": "/verify-token", "outcome": "cached"}, 4},
			{"auth_client_request_duration_seconds", map[string]string{"call": "/verify-token"}, 1},
			{"tasks_stored", nil, 4},
			{"tasks_store_fsync_seconds", nil, 1},
			{"tasks_store_write_seconds", nil, 1},
			{"tasks_store_batch_records", nil, 1},
			{"process_resident_memory_bytes", nil, 1},
		}},
		{s.users, []want{
			{"http_requests_total", map[string]string{"route": "/login", "method": "POST", "code": "200"}, 1},
			{"auth_client_requests_total", map[string]string{"call": "/token", "outcome": "ok"}, 1},
			{"users_stored", nil, 1},
		}},
		{s.auth, []want{
			{"http_requests_total", map[string]string{"route": "/verify-token", "method": "POST", "code": "200"}, 1},
			{"http_requests_total", map[string]string{"route": "/hashed-password", "method": "POST", "code": "200"}, 1},
		}},
	} {
		metrics := scrape.Scrape(t, check.p.MetricsURL)
		for _, w := range check.wants {
			got, ok := metrics.Value(w.name, w.labels)
			if !ok || got < w.atLeast {
				t.Errorf("%s: %s%v = %v (found: %v), want at least %v", check.p.Name, w.name, w.labels, got, ok, w.atLeast)
			}
		}
	}
}

// TestAnswersNameTheirPods: every answer of the real binaries names the process that served
// it (X-Served-By), and tasks' the auth process that verified the token, then that its cache
// answered; bodies are the contract's. SERVED_BY=false leaves both headers out.
func TestAnswersNameTheirPods(t *testing.T) {
	s := startSystem(t, byAuthAddress)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	first := send(t, "GET", s.tasks.URL+"/tasks", token, "", "")
	if by := first.Header.Get("X-Served-By"); !strings.HasPrefix(by, "tasks ") {
		t.Errorf("tasks answered X-Served-By %q, want it to name tasks and its pod", by)
	}
	if by := first.Header.Get("X-Auth-Verified-By"); !strings.HasPrefix(by, "auth ") || strings.Contains(by, "cached") {
		t.Errorf("the first GET's X-Auth-Verified-By %q, want auth's pod", by)
	}
	if by := send(t, "GET", s.tasks.URL+"/tasks", token, "", "").Header.Get("X-Auth-Verified-By"); !strings.Contains(by, "; cached ") {
		t.Errorf("the second GET's X-Auth-Verified-By %q, want it answered from the cache", by)
	}

	quiet := startSystem(t, func(auth *harness.Process) []string { return append(byAuthAddress(auth), "SERVED_BY=false") })
	token = harness.Login(t, quiet.users.URL, harness.DemoEmail, harness.DemoPassword)
	answer := send(t, "GET", quiet.tasks.URL+"/tasks", token, "", "")
	for _, h := range []string{"X-Served-By", "X-Auth-Verified-By"} {
		if v := answer.Header.Get(h); v != "" {
			t.Errorf("with SERVED_BY=false, %s: %q", h, v)
		}
	}
}
