package hardening

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// TestGuesserBehindASharedAddressLocksNobodyOut: five users behind one address (a NAT, a
// proxy, kubectl port-forward) have each logged in once; then a guesser at the same address
// makes 21 wrong logins and goes on with one every 0.2 s, which keeps the address past
// LOGIN_FAILURES_PER_CLIENT (20 per THROTTLE_WINDOW, 10 s here: two a second come back).
// Every correct login of the five, all along, must succeed; a login to an account never
// logged in to from that address is what the address's limit still holds back.
func TestGuesserBehindASharedAddressLocksNobodyOut(t *testing.T) {
	s := startSystemWith(t, nil, []string{"THROTTLE_WINDOW=10s"}, nil)
	const shared = "127.0.0.50"
	users := make([]string, 5)
	behind := harness.ClientFrom(shared, true, 10*time.Second)
	for i := range users {
		users[i] = fmt.Sprintf("behind-nat-%d@example.com", i)
		harness.Call(t, "POST", s.users.URL+"/signup", "", map[string]string{"email": users[i], "password": "right-password"})
		if _, status, _, err := loginFrom(behind, s.users.URL, users[i], "right-password"); err != nil || status != http.StatusOK {
			t.Fatalf("%s's first login: %d %v", users[i], status, err)
		}
	}
	harness.Call(t, "POST", s.users.URL+"/signup", "", map[string]string{"email": "newcomer@example.com", "password": "right-password"})

	guesser := harness.ClientFrom(shared, true, 10*time.Second)
	var guesses counter
	guess := func() {
		_, status, _, err := loginFrom(guesser, s.users.URL, randomEmail(), "wrong")
		guesses.add(fmt.Sprintf("%d %v", status, err))
	}
	for range 21 {
		guess()
	}
	// Right after the burst the address is past its limit: a first login from it waits.
	_, newcomer, header, _ := loginFrom(behind, s.users.URL, "newcomer@example.com", "right-password")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				guess()
			}
		}
	})
	var served int
	var failed []string
	for i := range 40 {
		_, status, _, err := loginFrom(behind, s.users.URL, users[i%len(users)], "right-password")
		if err != nil || status != http.StatusOK {
			failed = append(failed, fmt.Sprintf("%d %v", status, err))
		} else {
			served++
		}
		time.Sleep(150 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	figure(t, "shared-address", "a guesser at the shared address (21 wrong logins, then one every 0.2 s; window 10 s): its answers %s; the 5 users who had logged in there before: %d of 40 correct logins served (target ≥ 95 %%), not: %q; an account new to the address: %d",
		&guesses, served, failed, newcomer)
	if guesses.get("429 <nil>") == 0 {
		t.Errorf("the guesser was never limited: %s", &guesses)
	}
	if len(failed) > 0 {
		t.Errorf("%d of 40 correct logins behind the guesser's address failed: %q", len(failed), failed)
	}
	if newcomer != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
		t.Errorf("a first login from the guesser's address while it is past its limit: %d, want 429 with Retry-After", newcomer)
	}
}

// TestGuessesAtOneAccountFromManyAddressesGetTheLimit: 40 addresses guess at one account at
// once, 3 times each. Exactly LOGIN_FAILURES_PER_ACCOUNT (10) guesses reach auth (401), the
// rest get 429 with a Retry-After of at most the time one try takes to come back (6 s), and
// the account's owner, who logged in from its own address before, logs in at once, even
// after mistyping.
func TestGuessesAtOneAccountFromManyAddressesGetTheLimit(t *testing.T) {
	s := startSystem(t)
	const account, password = "owner@example.com", "the-owners-password"
	harness.Call(t, "POST", s.users.URL+"/signup", "", map[string]string{"email": account, "password": password})
	owner := harness.ClientFrom("127.0.0.60", true, 10*time.Second)
	if _, status, _, err := loginFrom(owner, s.users.URL, account, password); err != nil || status != http.StatusOK {
		t.Fatalf("the owner's first login: %d %v", status, err)
	}

	var answers counter
	var mu sync.Mutex
	longestRetry := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 40 {
		client := harness.ClientFrom(fmt.Sprintf("127.0.4.%d", i+1), true, 10*time.Second)
		wg.Go(func() {
			for j := range 3 {
				_, status, header, err := loginFrom(client, s.users.URL, account, fmt.Sprintf("guess-%d-%d", i, j))
				answers.add(fmt.Sprintf("%d %v", status, err))
				if retry, _ := strconv.Atoi(header.Get("Retry-After")); retry > 0 {
					mu.Lock()
					longestRetry = max(longestRetry, retry)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	_, mistyped, _, _ := loginFrom(owner, s.users.URL, account, "the-owners-pasword")
	ownerStart := time.Now()
	_, status, _, err := loginFrom(owner, s.users.URL, account, password)
	ownerTook := time.Since(ownerStart)

	figure(t, "account-guessing", "40 addresses × 3 guesses at one account in %s: %s (limit 10 a minute), longest Retry-After %d s; the owner after mistyping once (%d): %d in %s",
		took.Round(time.Millisecond), &answers, longestRetry, mistyped, status, ms(ownerTook))
	// The limit refills one try every 6 s: a slow run may see one more.
	if reached := answers.get("401 <nil>"); reached < 10 || reached > 10+int(took/(6*time.Second)) {
		t.Errorf("%d guesses reached auth, want exactly LOGIN_FAILURES_PER_ACCOUNT (10): %s", reached, &answers)
	}
	if answers.get("429 <nil>")+answers.get("401 <nil>") != 120 {
		t.Errorf("guesses got %s, want only 401 and 429", &answers)
	}
	if longestRetry > 6 {
		t.Errorf("Retry-After up to %d s, want at most 6 (one try back at 10 a minute)", longestRetry)
	}
	if mistyped != http.StatusUnauthorized || err != nil || status != http.StatusOK {
		t.Errorf("the owner, mistyping once then logging in: %d then %d %v, want 401 then 200", mistyped, status, err)
	}
}

// TestTrustedProxyNamesTheClient: behind a proxy in TRUSTED_PROXIES, the client is the
// address X-Forwarded-For names: a guesser there past its limit gets 429 while another
// client through the same proxy logs in for the first time; a client that is not a trusted
// proxy cannot escape its own limit by writing the header.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	s := startSystemWith(t, nil, []string{"TRUSTED_PROXIES=127.0.0.70/32"}, nil)
	harness.Call(t, "POST", s.users.URL+"/signup", "", map[string]string{"email": "someone@example.com", "password": "right-password"})
	proxy := harness.ClientFrom("127.0.0.70", true, 10*time.Second)
	direct := harness.ClientFrom("127.0.0.71", true, 10*time.Second)
	login := func(client *http.Client, forwardedFor, email, password string) int {
		req, _ := http.NewRequest("POST", s.users.URL+"/login", strings.NewReader(mustJSON(map[string]string{"email": email, "password": password})))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(resp)
		return resp.StatusCode
	}
	var last, lastDirect int
	for i := range 21 {
		last = login(proxy, "198.51.100.1", randomEmail(), "wrong")
		lastDirect = login(direct, fmt.Sprintf("198.51.100.%d", 100+i), randomEmail(), "wrong")
	}
	if last != http.StatusTooManyRequests || lastDirect != http.StatusTooManyRequests {
		t.Fatalf("the 21st failure through the proxy: %d; from an address writing its own header: %d; want 429 both", last, lastDirect)
	}
	if status := login(proxy, "198.51.100.2", "someone@example.com", "right-password"); status != http.StatusOK {
		t.Errorf("another client through the same trusted proxy: %d, want 200", status)
	}
	if status := login(direct, "198.51.100.3", "someone@example.com", "right-password"); status != http.StatusTooManyRequests {
		t.Errorf("a first login from the limited address, with a header naming another: %d, want 429", status)
	}
}
