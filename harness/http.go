package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// ClientFrom is an HTTP client whose connections come from the loopback address local (any
// of 127.0.0.0/8): to the services, a client of its own, with its own per-address limits.
// keepAlive false opens a connection per request.
func ClientFrom(local string, keepAlive bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: dialer.DialContext, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 64,
	}}
}

// Do sends one request with a JSON body (when body is not nil) and, when token is not empty,
// an Authorization: Bearer header, and returns the answer, its body decoded when it is a
// JSON object. It fails nothing: goroutines and servers that may be gone use it directly.
func Do(method, url, token string, body any) (Answer, error) {
	return DoWith(Client, method, url, token, body)
}

// DoWith is Do with client (e.g. one from ClientFrom).
func DoWith(client *http.Client, method, url, token string, body any) (Answer, error) {
	var payload io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return Answer{}, err
		}
		payload = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, payload)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err != nil {
		return a, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	json.Unmarshal(raw, &a.Body)
	return a, nil
}

// Call is Do for a test: any failure to get an answer, or an answer that is not a JSON
// object, fails it.
func Call(t testing.TB, method, url, token string, body any) Answer {
	t.Helper()
	a, err := Do(method, url, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if a.Body == nil {
		t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", method, url, a.Status, a.Raw)
	}
	return a
}

// Send is Do reduced to the status.
func Send(method, url, token string, body any) (int, error) {
	a, err := Do(method, url, token, body)
	return a.Status, err
}

// Expect is Do that wants status: any other answer is an error that says what came.
func Expect(method, url, token string, body any, status int) error {
	a, err := Do(method, url, token, body)
	if err != nil {
		return err
	}
	if a.Status != status {
		return fmt.Errorf("%s %s: %d %.200s, want %d", method, url, a.Status, a.Raw, status)
	}
	return nil
}

// AssertNoSecrets fails the test if any process logged any of secrets.
func AssertNoSecrets(t testing.TB, processes []*Process, secrets ...string) {
	t.Helper()
	for _, p := range processes {
		logs := p.SettledLogs()
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
