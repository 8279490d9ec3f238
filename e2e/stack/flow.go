package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// DemoEmail and DemoPassword are the course's first login, which works without signup.
const (
	DemoEmail    = "test@gmail.com"
	DemoPassword = "testers"
)

// Client drives the public API as Postman or curl would.
var Client = &http.Client{Timeout: 10 * time.Second}

// Answer is a response with its JSON body decoded.
type Answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Message is the body's "message" field.
func (a Answer) Message() string { s, _ := a.Body["message"].(string); return s }

// Call sends one request; token, when not empty, goes in an Authorization: Bearer header.
func Call(t testing.TB, method, url, token string, body any) Answer {
	t.Helper()
	var payload io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		payload = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, payload)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", method, url, resp.StatusCode, raw)
	}
	return a
}

// Send is Call for goroutines and for servers that may be gone: it returns the status, or an
// error, instead of failing the test.
func Send(method, url, token string, body any) (int, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := Client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// AssertNoSecrets fails the test if any process logged any of secrets.
func AssertNoSecrets(t testing.TB, processes []*Process, secrets ...string) {
	t.Helper()
	for _, p := range processes {
		logs := p.Logs()
		for _, secret := range secrets {
			if secret != "" && strings.Contains(logs, secret) {
				t.Errorf("%s's logs contain a secret (%.12s…)", p.Name, secret)
			}
		}
	}
}

// Login logs in and returns the token, failing the test on anything but 200.
func Login(t testing.TB, usersURL, email, password string) string {
	t.Helper()
	a := Call(t, "POST", usersURL+"/login", "", map[string]string{"email": email, "password": password})
	token, _ := a.Body["token"].(string)
	if a.Status != http.StatusOK || token == "" {
		t.Fatalf("login as %s: %d %s", email, a.Status, a.Raw)
	}
	return token
}

// Flow is the course's flow: log in as the demo user, POST a task, GET the tasks and find it
// there, and see that GET without a token is refused. It returns the token and the task.
func Flow(t testing.TB, usersURL, tasksURL string) (token string, task map[string]string) {
	t.Helper()
	token = Login(t, usersURL, DemoEmail, DemoPassword)
	task = map[string]string{"title": fmt.Sprintf("flow %d", time.Now().UnixNano()), "text": "from the end-to-end flow"}
	if a := Call(t, "POST", tasksURL+"/tasks", token, task); a.Status != http.StatusCreated || a.Message() != "Task stored." {
		t.Fatalf("POST /tasks: %d %s", a.Status, a.Raw)
	}
	if !HasTask(t, tasksURL, token, task["title"]) {
		t.Fatalf("GET /tasks does not list the task just stored")
	}
	if a := Call(t, "GET", tasksURL+"/tasks", "", nil); a.Status != http.StatusUnauthorized || a.Message() != "No token provided." {
		t.Fatalf("GET /tasks without a token: %d %s", a.Status, a.Raw)
	}
	return token, task
}

// HasTask reports whether GET /tasks lists a task with title.
func HasTask(t testing.TB, tasksURL, token, title string) bool {
	t.Helper()
	a := Call(t, "GET", tasksURL+"/tasks", token, nil)
	if a.Status != http.StatusOK || a.Message() != "Tasks loaded." {
		t.Fatalf("GET /tasks: %d %s", a.Status, a.Raw)
	}
	tasks, _ := a.Body["tasks"].([]any)
	for _, raw := range tasks {
		if task, _ := raw.(map[string]any); task["title"] == title {
			return true
		}
	}
	return false
}
