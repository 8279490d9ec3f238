package hardening

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// authReplica is one auth process behind the balancer.
type authReplica struct {
	process   *harness.Process
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	inflight  sync.WaitGroup
	env       string // its key settings, for the log
}

// balancer spreads requests over auth replicas one request at a time, round robin, as a
// Kubernetes Service with several ready pods does over connections (and the auth client
// recycles its connections every few seconds, so over time, requests).
type balancer struct {
	mu       sync.Mutex
	replicas []*authReplica
	next     int
	errors   atomic.Int64
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	if len(b.replicas) == 0 {
		b.mu.Unlock()
		b.errors.Add(1)
		http.Error(w, `{"message":"no auth replica"}`, http.StatusServiceUnavailable)
		return
	}
	replica := b.replicas[b.next%len(b.replicas)]
	b.next++
	replica.inflight.Add(1) // under mu: once out of rotation, no request is added
	b.mu.Unlock()
	defer replica.inflight.Done()
	replica.proxy.ServeHTTP(w, r)
}

// add starts an auth process with env and puts it in rotation once it is ready.
func (b *balancer) add(t *testing.T, env ...string) *authReplica {
	t.Helper()
	p := harness.Start(t, harness.Build(t).Auth, append([]string{"TOKEN_ISSUER=" + tokenIssuer, "BCRYPT_COST=4", "TOKEN_TTL=3s", "TOKEN_LEEWAY=1s"}, env...))
	waitReady(t, p, 10*time.Second)
	target, _ := url.Parse(p.URL)
	r := &authReplica{process: p, transport: &http.Transport{MaxIdleConnsPerHost: 64}, env: keyNames(env)}
	r.proxy = httputil.NewSingleHostReverseProxy(target)
	r.proxy.Transport = r.transport
	r.proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		b.errors.Add(1)
		http.Error(w, `{"message":"auth replica failed"}`, http.StatusBadGateway)
	}
	b.mu.Lock()
	b.replicas = append(b.replicas, r)
	b.mu.Unlock()
	return r
}

// replace rolls one replica: out of rotation, its requests drained, stopped; a new one with
// env started, ready, and in rotation in its place.
func (b *balancer) replace(t *testing.T, old *authReplica, env ...string) *authReplica {
	t.Helper()
	b.mu.Lock()
	for i, r := range b.replicas {
		if r == old {
			b.replicas = append(b.replicas[:i:i], b.replicas[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	old.inflight.Wait()
	// Its idle connections too, as a load balancer drops an endpoint's: net/http's Shutdown
	// waits up to 5 s for a connection that was opened but never sent a request (the
	// transport dials ahead), which made a stop take 4–5 s instead of milliseconds.
	old.transport.CloseIdleConnections()
	if err := old.process.Stop(); err != nil {
		t.Errorf("stopping auth: %v", err)
	}
	return b.add(t, env...)
}

// keyNames says which keys env sets, by name, for the log.
func keyNames(env []string) string {
	names := map[string]string{rotationOld: "old", rotationNew: "new"}
	var parts []string
	for _, setting := range env {
		name, value, _ := strings.Cut(setting, "=")
		if name == "JWT_SECRET" || name == "JWT_PREVIOUS_SECRETS" {
			parts = append(parts, name+"="+names[value])
		}
	}
	return strings.Join(parts, " ")
}

const (
	rotationOld = "the-old-signing-key-of-the-rotation-test-0123"
	rotationNew = "the-new-signing-key-of-the-rotation-test-4567"
)

// steadyLoad is clients, each its own user, logging in and then checking the token with
// GET /tasks for half a second, over and over, until stop. Each replica rollout window (a
// second) then sees some 16 logins, so tokens of both keys are in use across it.
type steadyLoad struct {
	logins, loginFailures, checks, checkFailures atomic.Int64
	mu                                           sync.Mutex
	failures                                     []string
}

func (l *steadyLoad) fail(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, what)
	}
}

func runSteadyLoad(usersURL, tasksURL string, emails []string, stop <-chan struct{}) (*steadyLoad, func()) {
	load := &steadyLoad{}
	var wg sync.WaitGroup
	for i, email := range emails {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			// Spread over the cycle, so that some client logs in at any moment of a rollout.
			time.Sleep(time.Duration(i) * 500 * time.Millisecond / time.Duration(len(emails)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				load.logins.Add(1)
				token, status, _, err := loginFrom(client, usersURL, email, "pw-"+email)
				if err != nil || status != http.StatusOK {
					load.loginFailures.Add(1)
					load.fail(fmt.Sprintf("login %s: %d %v", email, status, err))
					time.Sleep(20 * time.Millisecond)
					continue
				}
				for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
					load.checks.Add(1)
					if status, answer, _, err := do(client, "GET", tasksURL+"/tasks", token, ""); err != nil || status != http.StatusOK {
						load.checkFailures.Add(1)
						load.fail(fmt.Sprintf("GET /tasks: %d %v %v", status, answer["message"], err))
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return load, wg.Wait
}

// rotate runs two auth replicas behind one address, users and tasks in front of them and a
// steady load of logins and token checks, and rolls the replicas through steps: each step
// replaces one replica, settles, then the other. before runs before a step (by its index).
// It returns the load's counts.
func rotate(t *testing.T, steps [][]string, before func(step int)) *steadyLoad {
	t.Helper()
	lb := &balancer{}
	front := httptest.NewServer(lb)
	defer front.Close()
	initial := []string{"JWT_SECRET=" + rotationOld}
	replicas := []*authReplica{lb.add(t, initial...), lb.add(t, initial...)}

	bin, data := harness.Build(t), t.TempDir()
	authAddress := "AUTH_ADDRESS=" + strings.TrimPrefix(front.URL, "http://")
	users := harness.Start(t, bin.Users, []string{authAddress, "USERS_FOLDER=" + data + "/users", "SIGNUPS_PER_CLIENT=0", "DEMO_USER="})
	// Every token check goes to an auth replica (no verified-token cache), so that each one
	// tests the replicas' keys rather than tasks' memory of an earlier answer.
	tasks := harness.Start(t, bin.Tasks, []string{authAddress, "TASKS_FOLDER=" + data + "/tasks", "AUTH_VERIFY_CACHE=0"})
	waitReady(t, users, 10*time.Second)
	waitReady(t, tasks, 10*time.Second)
	var emails []string
	for i := range 8 {
		email := fmt.Sprintf("rotation-%d@example.com", i)
		if a := harness.Call(t, "POST", users.URL+"/signup", "", map[string]string{"email": email, "password": "pw-" + email}); a.Status != http.StatusCreated {
			t.Fatalf("signup: %d %s", a.Status, a.Raw)
		}
		emails = append(emails, email)
	}

	stop := make(chan struct{})
	load, wait := runSteadyLoad(users.URL, tasks.URL, emails, stop)
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop); wait() }) }
	t.Cleanup(stopLoad)        // also when a replacement fails the test half-way
	const settle = time.Second // between the two replicas of a step, and after each step
	time.Sleep(settle)
	start := time.Now()
	for i, env := range steps {
		if before != nil {
			before(i)
		}
		for n := range replicas {
			began := time.Now()
			replicas[n] = lb.replace(t, replicas[n], env...)
			t.Logf("replica %d replaced by one with %s in %s", n+1, keyNames(env), time.Since(began).Round(time.Millisecond))
			time.Sleep(settle)
		}
		t.Logf("step %d (%s) rolled out after %s: %d logins (%d failed), %d token checks (%d failed)", i+1, keyNames(env),
			time.Since(start).Round(100*time.Millisecond), load.logins.Load(), load.loginFailures.Load(), load.checks.Load(), load.checkFailures.Load())
	}
	stopLoad()
	if n := lb.errors.Load(); n > 0 {
		t.Errorf("the balancer failed %d requests: a replica was stopped with requests in flight", n)
	}
	return load
}

// TestKeyRotationWithoutLogout rolls a new signing key through two auth replicas while
// clients keep logging in and using their tokens, the way the docs prescribe: every replica
// first accepts the new key (still signing with the old), then signs with the new key (still
// accepting the old), and once every token signed with the old key has expired, the old key
// goes. No login and no token check may fail on the way. The naive rotation, straight from
// the old key to the new one (accepting the old), must show failures: while one replica
// signs with the new key, the other does not yet accept it.
func TestKeyRotationWithoutLogout(t *testing.T) {
	t.Run("three steps", func(t *testing.T) {
		steps := [][]string{
			{"JWT_SECRET=" + rotationOld, "JWT_PREVIOUS_SECRETS=" + rotationNew},
			{"JWT_SECRET=" + rotationNew, "JWT_PREVIOUS_SECRETS=" + rotationOld},
			{"JWT_SECRET=" + rotationNew},
		}
		load := rotate(t, steps, func(step int) {
			if step == 2 {
				// Every token the old key signed has expired: TOKEN_TTL 3s, TOKEN_LEEWAY 1s.
				time.Sleep(3*time.Second + time.Second + 500*time.Millisecond)
			}
		})
		figure(t, "key-rotation", "three-step rotation through 2 auth replicas under load: %d logins (%d failed), %d token checks (%d failed)",
			load.logins.Load(), load.loginFailures.Load(), load.checks.Load(), load.checkFailures.Load())
		if load.loginFailures.Load() > 0 || load.checkFailures.Load() > 0 {
			t.Errorf("%d logins and %d token checks failed during the rotation, want none: %q",
				load.loginFailures.Load(), load.checkFailures.Load(), load.failures)
		}
		if load.checks.Load() < 500 {
			t.Errorf("only %d token checks ran during the rotation: the load was not steady", load.checks.Load())
		}
	})
	t.Run("naive two steps", func(t *testing.T) {
		load := rotate(t, [][]string{{"JWT_SECRET=" + rotationNew, "JWT_PREVIOUS_SECRETS=" + rotationOld}}, nil)
		figure(t, "key-rotation-naive", "old → new+old directly, through 2 auth replicas under load: %d logins (%d failed), %d token checks (%d failed), e.g. %.160q",
			load.logins.Load(), load.loginFailures.Load(), load.checks.Load(), load.checkFailures.Load(), load.failures)
		if load.checkFailures.Load() == 0 {
			t.Errorf("no token check failed in the naive rotation (%d checks): the test no longer shows why the docs prescribe three steps", load.checks.Load())
		}
	})
}
