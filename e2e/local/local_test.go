// Package local runs the three real binaries on loopback, wired each way the course teaches
// outside a cluster, and drives them over HTTP as a learner would.
package local

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunTests(m)) }

const jwtSecret = "an-end-to-end-test-secret-of-enough-bytes"

type system struct {
	auth, users, tasks *harness.Process
}

// startSystem starts auth, then users and tasks with the discovery variables given.
func startSystem(t *testing.T, discovery func(auth *harness.Process) []string) system {
	t.Helper()
	bin := harness.Build(t)
	data := t.TempDir()
	auth := harness.Start(t, bin.Auth, []string{"JWT_SECRET=" + jwtSecret})
	users := harness.Start(t, bin.Users, append(discovery(auth), "USERS_FOLDER="+data+"/users"))
	tasks := harness.Start(t, bin.Tasks, append(discovery(auth), "TASKS_FOLDER="+data+"/tasks", "AUTH_TIMEOUT=1s"))
	return system{auth, users, tasks}
}

func byAuthAddress(auth *harness.Process) []string {
	return []string{"AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(auth.Port)}
}

func byInjectedPair(auth *harness.Process) []string {
	return []string{"AUTH_SERVICE_SERVICE_HOST=127.0.0.1", "AUTH_SERVICE_SERVICE_PORT=" + strconv.Itoa(auth.Port)}
}

func TestFlow(t *testing.T) {
	for name, discovery := range map[string]func(*harness.Process) []string{
		"wired by AUTH_ADDRESS":                       byAuthAddress,
		"wired by the variables kubelet would inject": byInjectedPair,
		"with the course's one shared list": func(auth *harness.Process) []string {
			return append(byAuthAddress(auth), "TASKS_SHARED=true")
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := startSystem(t, discovery)
			shared := slices.Contains(discovery(s.auth), "TASKS_SHARED=true")
			demoToken, _ := harness.Flow(t, s.users.URL, s.tasks.URL)

			signup := harness.Call(t, "POST", s.users.URL+"/signup", "", map[string]string{"email": "learner@example.com", "password": "s3cret-pass"})
			if signup.Status != http.StatusCreated || signup.Message() != "User created!" {
				t.Fatalf("signup: %d %s", signup.Status, signup.Raw)
			}
			token := harness.Login(t, s.users.URL, "learner@example.com", "s3cret-pass")
			if a := harness.Call(t, "POST", s.tasks.URL+"/tasks", token, map[string]string{"title": "mine"}); a.Status != http.StatusCreated {
				t.Fatalf("POST as the new user: %d %s", a.Status, a.Raw)
			}
			// The demo user sees the new user's task only in the course's shared mode.
			demoList := harness.Call(t, "GET", s.tasks.URL+"/tasks", demoToken, nil)
			if sees := strings.Contains(demoList.Raw, `"title":"mine"`); demoList.Status != http.StatusOK || sees != shared {
				t.Fatalf("TASKS_SHARED=%v: the demo user's list (%d) shows another user's task: %v, want %v: %s", shared, demoList.Status, sees, shared, demoList.Raw)
			}
			if a := harness.Call(t, "POST", s.users.URL+"/login", "", map[string]string{"email": "learner@example.com", "password": "wrong"}); a.Status != http.StatusUnauthorized {
				t.Fatalf("wrong password: %d %s", a.Status, a.Raw)
			}
			if a := harness.Call(t, "POST", s.tasks.URL+"/tasks", token+"x", map[string]string{"title": "forged"}); a.Status != http.StatusUnauthorized || a.Message() != "Could not verify token." {
				t.Fatalf("tampered token: %d %s", a.Status, a.Raw)
			}

			harness.AssertNoSecrets(t, []*harness.Process{s.auth, s.users, s.tasks},
				harness.DemoPassword, "s3cret-pass", "wrong", demoToken, token, jwtSecret, "$2a$")
			if logs := s.tasks.SettledLogs(); !strings.Contains(logs, `"msg":"auth service found"`) {
				t.Errorf("tasks did not log where it found auth:\n%s", logs)
			}
		})
	}
}

func TestStartFailsWithoutAWayToFindAuth(t *testing.T) {
	bin := harness.Build(t)
	for _, binary := range []string{bin.Users, bin.Tasks} {
		cmd := exec.Command(binary)
		cmd.Env = []string{"PORT=0", "USERS_FOLDER=" + t.TempDir(), "TASKS_FOLDER=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s started without AUTH_ADDRESS or AUTH_SERVICE_SERVICE_HOST", binary)
		}
		for _, name := range []string{"AUTH_ADDRESS", "AUTH_SERVICE_SERVICE_HOST", "AUTH_SERVICE_SERVICE_PORT"} {
			if !strings.Contains(string(out), name) {
				t.Errorf("%s's error does not name %s: %s", binary, name, out)
			}
		}
	}
}

// TestAuthOutageIs503AndRecoversWithoutRestart: with auth down, what needs auth answers 503
// with a message, and works again once auth is back, with no restart. A token tasks verified
// a moment before the outage goes on working from its verified-token cache
// (AUTH_VERIFY_CACHE), and with AUTH_VERIFY_CACHE=0 it does not.
func TestAuthOutageIs503AndRecoversWithoutRestart(t *testing.T) {
	for name, c := range map[string]struct {
		env               []string
		verifiedTokenSees int
	}{
		"with the verified-token cache":    {nil, http.StatusOK},
		"without it (AUTH_VERIFY_CACHE=0)": {[]string{"AUTH_VERIFY_CACHE=0"}, http.StatusServiceUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			s := startSystem(t, func(auth *harness.Process) []string { return append(byAuthAddress(auth), c.env...) })
			token, _ := harness.Flow(t, s.users.URL, s.tasks.URL)
			if err := s.auth.Stop(); err != nil {
				t.Fatalf("auth did not stop cleanly: %v", err)
			}
			if a := harness.Call(t, "GET", s.tasks.URL+"/tasks", token, nil); a.Status != c.verifiedTokenSees {
				t.Errorf("GET /tasks with the token just verified, auth down: %d %s, want %d", a.Status, a.Raw, c.verifiedTokenSees)
			}
			for _, call := range []struct{ method, url, token string }{
				{"GET", s.tasks.URL + "/tasks", "eyJhbGciOiJIUzI1NiJ9.e30.bm90LXZlcmlmaWVk"}, // never verified
				{"POST", s.users.URL + "/login", ""},
			} {
				start := time.Now()
				a := harness.Call(t, call.method, call.url, call.token, map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword})
				if a.Status != http.StatusServiceUnavailable || a.Message() == "" {
					t.Errorf("%s %s with auth down: %d %s, want 503 with a message", call.method, call.url, a.Status, a.Raw)
				}
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("%s %s took %s with auth down", call.method, call.url, took)
				}
			}
			s.auth.Restart(t)
			token = harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
			if a := harness.Call(t, "GET", s.tasks.URL+"/tasks", token, nil); a.Status != http.StatusOK {
				t.Fatalf("GET /tasks after auth came back: %d %s", a.Status, a.Raw)
			}
		})
	}
}

// TestSIGTERMDrainsInFlightRequests holds requests inside tasks (auth answers only once all
// of them are waiting on it) while tasks gets SIGTERM: every one of them must still be
// answered, then tasks exits 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	bin := harness.Build(t)
	const inFlight = 20
	arrived, release := make(chan struct{}, inFlight), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Token string }
		json.NewDecoder(r.Body).Decode(&req)
		if req.Token == "in-flight" {
			arrived <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"Valid token.","uid":"u1"}`))
	}))
	defer auth.Close()
	tasks := harness.Start(t, bin.Tasks, []string{
		"AUTH_ADDRESS=" + strings.TrimPrefix(auth.URL, "http://"),
		"TASKS_FOLDER=" + t.TempDir(),
	})

	type result struct {
		status int
		err    error
	}
	results := make(chan result, inFlight)
	for i := range inFlight {
		go func() {
			status, err := harness.Send("POST", tasks.URL+"/tasks", "in-flight", map[string]string{"title": "in flight " + strconv.Itoa(i)})
			results <- result{status, err}
		}()
	}
	for range inFlight {
		select {
		case <-arrived: // this request is inside tasks, waiting on auth
		case <-time.After(10 * time.Second):
			t.Fatal("the requests did not all reach auth")
		}
	}
	if err := tasks.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	once.Do(func() { close(release) })
	for range inFlight {
		if r := <-results; r.err != nil || r.status != http.StatusCreated {
			t.Errorf("an in-flight POST got %d, %v during shutdown, want 201", r.status, r.err)
		}
	}
	if err := tasks.Wait(10 * time.Second); err != nil {
		t.Fatalf("tasks did not exit cleanly after draining: %v\n%s", err, tasks.Logs())
	}
}

// TestMismatchedAPIKeySaysWhoMustFixIt: users and tasks whose AUTH_API_KEY auth refuses
// answer 503 with a message that says the service is misconfigured and that retrying will
// not help (not "try again in a moment"), and auth says why in one log line, not one per call.
func TestMismatchedAPIKeySaysWhoMustFixIt(t *testing.T) {
	bin := harness.Build(t)
	data := t.TempDir()
	auth := harness.Start(t, bin.Auth, []string{"JWT_SECRET=" + jwtSecret})
	wrong := append(byAuthAddress(auth), "AUTH_API_KEY=a-service-credential-auth-does-not-have")
	users := harness.Start(t, bin.Users, append(wrong, "USERS_FOLDER="+data+"/users"))
	tasks := harness.Start(t, bin.Tasks, append(wrong, "TASKS_FOLDER="+data+"/tasks"))
	creds := map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword, "title": "t"}
	for _, call := range []struct{ method, url, token string }{
		{"POST", users.URL + "/login", ""},
		{"POST", users.URL + "/signup", ""},
		{"GET", tasks.URL + "/tasks", "a.token.shaped"},
		{"POST", tasks.URL + "/tasks", "a.token.shaped"},
	} {
		a := harness.Call(t, call.method, call.url, call.token, creds)
		msg := a.Message()
		if a.Status != http.StatusServiceUnavailable || !strings.Contains(msg, "misconfigured") ||
			!strings.Contains(msg, "AUTH_API_KEY") || !strings.Contains(msg, "Retrying will not help") {
			t.Errorf("%s %s with a key auth refuses: %d %s, want 503 saying the service is misconfigured", call.method, call.url, a.Status, a.Raw)
		}
	}
	// users and tasks both call from 127.0.0.1: one caller, however many calls.
	refused := 0
	for line := range strings.Lines(auth.SettledLogs()) {
		if strings.Contains(line, "caller refused") {
			refused++
			if !strings.Contains(line, "AUTH_API_KEY differs") {
				t.Errorf("auth's refusal does not say why: %s", line)
			}
		}
	}
	if refused != 1 {
		t.Errorf("auth logged %d refusals of one caller, want 1:\n%s", refused, auth.Logs())
	}
}
