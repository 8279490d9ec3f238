package hardening

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// loginsFrom logs in as the demo user n times, pause apart, from a client of its own on the
// loopback address local, and returns each one's time and the answers that were not 200.
func loginsFrom(t *testing.T, s system, local string, n int, pause time.Duration) (took []time.Duration, failed []string) {
	l := &legitimate{t: t, s: s, client: harness.ClientFrom(local, true, 10*time.Second)}
	return l.logins(n, pause)
}

// TestLoginFloodsLeaveAuthToOthers: at the services' real bcrypt cost, two floods that take
// all of auth's bcrypt capacity without tripping any failure limit: the demo account's right
// password from 2 addresses × 8 clients, then wrong passwords from 32 clients each moving to
// a new address before its limit. Each time a legitimate user logs in from an address the
// service has never seen, 15 times: every one must succeed. users lets at most
// LOGINS_IN_FLIGHT logins reach auth at once, and the next place goes to a login where the
// address has logged in before, then to the address that has had the fewest turns of late.
func TestLoginFloodsLeaveAuthToOthers(t *testing.T) {
	s := startSystemWith(t, []string{realBcryptCost}, nil, nil)
	idle, failedIdle := loginsFrom(t, s, "127.0.0.2", 15, 0)
	if len(failedIdle) > 0 {
		t.Fatalf("logins with no flood: %q", failedIdle)
	}
	for i, f := range []struct {
		name, mode string
		args       []string
		wait       string
	}{
		{"the demo password from 2 addresses × 8 clients", "right", []string{"-workers", "16", "-password", harness.DemoPassword}, "200"},
		{"wrong passwords from 32 clients on ever new addresses", "many", nil, "401"},
	} {
		flood := startFlood(t, s.users.URL, f.mode, append(f.args, "-max", "60s")...)
		flood.waitFor(f.wait, 50, 10*time.Second)
		took, failed := loginsFrom(t, s, fmt.Sprintf("127.0.0.%d", 20+i), 15, 100*time.Millisecond)
		t.Logf("%s: %d failed %q, took %v", f.name, len(failed), failed, took)
		result := flood.stop(t)
		figure(t, "login-fairness", "%s: the flood got %s; a legitimate user on a new address: %d of 15 logins not 200 (%.200q), p50 %s (idle %s; target ≥ 90 %% served, p50 ≤ 5× idle)",
			f.name, result, len(failed), failed, ms(percentile(took, 50)), ms(percentile(idle, 50)))
		if len(failed) > 0 {
			t.Errorf("%s: %d of 15 legitimate logins failed: %q", f.name, len(failed), failed)
		}
		if result.Answers[f.wait] == 0 {
			t.Errorf("%s: the flood itself got %s: it never reached auth", f.name, result)
		}
	}
	if status, err := harness.Send("GET", s.users.URL+"/readyz", "", nil); err != nil || status != http.StatusOK {
		t.Errorf("users /readyz after the floods: %d %v", status, err)
	}
}
