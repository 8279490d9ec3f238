package hardening

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// The services' real bcrypt cost: login floods are about the CPU each login costs auth.
const realBcryptCost = "BCRYPT_COST=10"

// legitimate is a well-behaved user on its own machine (127.0.0.2): it logs in as the demo
// user and lists its tasks.
type legitimate struct {
	t      *testing.T
	s      system
	client *http.Client
	token  string
}

func newLegitimate(t *testing.T, s system) *legitimate {
	l := &legitimate{t: t, s: s, client: harness.ClientFrom("127.0.0.2", true, 10*time.Second)}
	token, status, _, err := loginFrom(l.client, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	if err != nil || status != http.StatusOK {
		t.Fatalf("demo login: %d %v", status, err)
	}
	l.token = token
	return l
}

// idle measures 15 logins and 200 lists with no flood: what the flood's figures are held to.
func (l *legitimate) idle() (logins, lists []time.Duration) {
	logins, failed := l.logins(15, 0)
	if len(failed) > 0 {
		l.t.Fatalf("logins with no flood: %q", failed)
	}
	lists, failed = l.lists(200)
	if len(failed) > 0 {
		l.t.Fatalf("GET /tasks with no flood: %q", failed)
	}
	return logins, lists
}

// logins logs in n times, pause apart, and returns each one's time, and the answers that
// were not 200.
func (l *legitimate) logins(n int, pause time.Duration) (took []time.Duration, failed []string) {
	took = timed(n, func(i int) {
		if i > 0 {
			time.Sleep(pause)
		}
		body, _ := json.Marshal(map[string]string{"email": harness.DemoEmail, "password": harness.DemoPassword})
		status, answer, _, err := do(l.client, "POST", l.s.users.URL+"/login", "", string(body))
		if err != nil || status != http.StatusOK {
			failed = append(failed, fmt.Sprintf("%d %v %v", status, err, answer["message"]))
		}
	})
	if pause > 0 {
		for i := 1; i < n; i++ {
			took[i] -= pause
		}
	}
	return took, failed
}

// lists GETs /tasks n times and returns each one's time, and the answers that were not 200.
func (l *legitimate) lists(n int) (took []time.Duration, failed []string) {
	took = timed(n, func(int) {
		status, answer, _, err := do(l.client, "GET", l.s.tasks.URL+"/tasks", l.token, "")
		if err != nil || status != http.StatusOK {
			failed = append(failed, fmt.Sprintf("%d %v %v", status, err, answer["message"]))
		}
	})
	return took, failed
}

// TestLoginFloodFromOneAddressIsThrottled: 32 clients on one address (127.0.0.1) send wrong
// passwords, mostly for the demo account and the rest for made-up emails, as fast as they are
// answered. After LOGIN_FAILURES_PER_CLIENT (20) failures they get 429 with Retry-After,
// before users calls auth, so bcrypt stays free: a legitimate user on another address logs in
// as the demo user, and lists its tasks, at most 3 times slower (p50) than with no flood. The
// flood must not lock the demo user out: a guesser on one address is stopped by its address's
// throttle, and the account's own throttle must not turn its failures into a denial of
// service for the account's owner.
func TestLoginFloodFromOneAddressIsThrottled(t *testing.T) {
	s := startSystemWith(t, []string{realBcryptCost}, nil, nil)
	user := newLegitimate(t, s)
	idleLogins, idleLists := user.idle()

	flood := startFlood(t, s.users.URL, "one")
	// The first LOGIN_FAILURES_PER_CLIENT attempts reach auth (and fill its queue for a
	// moment); measure once the throttle bites.
	flood.waitFor("429", 200, 5*time.Second)
	floodLogins, failedLogins := user.logins(15, 100*time.Millisecond)
	floodLists, failedLists := user.lists(200)
	result := flood.stop(t)

	figure(t, "login-flood-one-address", "legitimate demo login p50 %s idle, %s during a 32-client wrong-password flood from one address (%d of 15 not 200: %.200q); target ≤ 3× idle",
		ms(percentile(idleLogins, 50)), ms(percentile(floodLogins, 50)), len(failedLogins), failedLogins)
	figure(t, "login-flood-one-address", "GET /tasks p50 %s idle, %s during the flood (%d of 200 not 200); target ≤ 3× idle",
		ms(percentile(idleLists, 50)), ms(percentile(floodLists, 50)), len(failedLists))
	figure(t, "login-flood-one-address", "the flood's answers: %s; 429s without Retry-After: %d", result, result.RetryAfterMissing)

	if result.Answers["429"] == 0 || result.RetryAfterMissing > 0 {
		t.Errorf("the flood got %s, %d of its 429s without Retry-After: want 429s with Retry-After", result, result.RetryAfterMissing)
	}
	// Only the first LOGIN_FAILURES_PER_CLIENT reach auth, give or take those in flight.
	if reached := result.Answers["401"]; reached > 20+32 {
		t.Errorf("%d of the flood's logins reached auth (401), want about LOGIN_FAILURES_PER_CLIENT (20)", reached)
	}
	if len(failedLogins) > 0 {
		t.Errorf("the legitimate demo user could not log in during the flood: %q", failedLogins)
	}
	if p50, idle := percentile(floodLogins, 50), percentile(idleLogins, 50); p50 > 3*idle {
		t.Errorf("legitimate login p50 %s during the flood, over 3 × %s idle", ms(p50), ms(idle))
	}
	if len(failedLists) > 0 {
		t.Errorf("GET /tasks during the flood: %q", failedLists)
	}
	if p50, idle := percentile(floodLists, 50), percentile(idleLists, 50); p50 > 3*idle {
		t.Errorf("GET /tasks p50 %s during the flood, over 3 × %s idle", ms(p50), ms(idle))
	}
}

// TestDistributedLoginFloodIsShedByAuth: attackers on 32 × many loopback addresses, each
// address staying under its throttle, and a new email every time, so every attempt reaches
// auth's bcrypt. auth's bounded queue must answer the excess 503 at once rather than queue it;
// its backlog must drain as soon as the flood stops (a legitimate login right after succeeds
// in under a second); and token checks (GET /tasks) must stay within 3 × their idle p50.
func TestDistributedLoginFloodIsShedByAuth(t *testing.T) {
	s := startSystemWith(t, []string{realBcryptCost}, nil, nil)
	user := newLegitimate(t, s)
	idleLogins, idleLists := user.idle()
	errorsBefore := len(errorLines(s.users))

	floodStart := time.Now()
	flood := startFlood(t, s.users.URL, "many")
	flood.waitFor("503", 100, 5*time.Second)
	floodLists, failedLists := user.lists(200)
	floodLogins, failedLogins := user.logins(5, 100*time.Millisecond)
	// Wrong passwords from an address of their own, sent at the services' priority: how fast
	// is an attempt auth has no room for refused?
	prober := harness.ClientFrom("127.0.0.3", true, 10*time.Second)
	var probes counter
	var shed []time.Duration
	for range 20 {
		start := time.Now()
		_, status, _, err := loginFrom(prober, s.users.URL, randomEmail(), "not-the-password")
		took := time.Since(start)
		probes.add(fmt.Sprintf("%d %v", status, err))
		if err == nil && status == http.StatusServiceUnavailable {
			shed = append(shed, took)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(max(0, 4*time.Second-time.Since(floodStart)))
	result := flood.stop(t)
	start := time.Now()
	_, status, _, err := loginFrom(user.client, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	after := time.Since(start)
	usersErrors := len(errorLines(s.users)) - errorsBefore

	figure(t, "login-flood-distributed", "the flood's answers in %s: %s (the attacker, at nice 19, saw its 503s in p50 %.2f ms, slowest %.2f ms, its own wait for CPU included)",
		time.Since(floodStart).Round(100*time.Millisecond), result, result.ShedP50, result.ShedMax)
	figure(t, "login-flood-distributed", "20 wrong-password probes during the flood: %s; their 503s p50 %s, slowest %s",
		&probes, ms(percentile(shed, 50)), ms(percentile(shed, 100)))
	figure(t, "login-flood-distributed", "GET /tasks p50 %s idle, %s during the flood (p90 %s; %d of 200 not 200); target ≤ 3× idle",
		ms(percentile(idleLists, 50)), ms(percentile(floodLists, 50)), ms(percentile(floodLists, 90)), len(failedLists))
	figure(t, "login-flood-distributed", "legitimate login p50 %s idle, %s during the flood (%d of 5 not 200: %.200q); right after the flood: %d in %s (target < 1 s)",
		ms(percentile(idleLogins, 50)), ms(percentile(floodLogins, 50)), len(failedLogins), failedLogins, status, ms(after))
	figure(t, "login-flood-distributed", "users logged %d ERROR lines during the flood", usersErrors)

	if result.Shed == 0 {
		t.Errorf("auth shed no login with 503 under a flood of %s: its queue is not bounded", result)
	}
	if len(shed) == 0 {
		t.Errorf("none of the 20 probes during the flood was shed with 503 (%s): nothing shows how fast auth refuses what it has no room for", &probes)
	}
	// Refused at once: a few milliseconds typically. Queued instead, a login would wait for a
	// worker and be refused only when its caller gave up (AUTH_TIMEOUT, 3 s).
	if p50, slowest := percentile(shed, 50), percentile(shed, 100); p50 > 50*time.Millisecond || slowest > time.Second {
		t.Errorf("logins auth had no room for were refused in p50 %s, slowest %s: auth queues the excess instead of refusing it at once", ms(p50), ms(slowest))
	}
	if usersErrors > 10 {
		t.Errorf("users logged %d ERROR lines for logins auth shed with 503: load being shed is not an error to log line by line", usersErrors)
	}
	if err != nil || status != http.StatusOK || after > time.Second {
		t.Errorf("a legitimate login right after the flood: %d %v in %s, want 200 in under 1 s", status, err, after)
	}
	if len(failedLists) > 0 {
		t.Errorf("GET /tasks during the flood: %q", failedLists)
	}
	if p50, idle := percentile(floodLists, 50), percentile(idleLists, 50); p50 > 3*idle {
		t.Errorf("GET /tasks p50 %s during the distributed flood, over 3 × %s idle: token checks wait behind bcrypt in auth", ms(p50), ms(idle))
	}
}

func randomEmail() string { return "nobody-" + strings.ToLower(rand.Text()[:10]) + "@example.com" }
