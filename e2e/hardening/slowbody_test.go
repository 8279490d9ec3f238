package hardening

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// tallied counts each distinct string: "503 <nil> (97×), 0 dial tcp ... (3×)".
func tallied(all []string) string {
	counts := map[string]int{}
	for _, s := range all {
		counts[s]++
	}
	parts := make([]string, 0, len(counts))
	for s, n := range counts {
		parts = append(parts, fmt.Sprintf("%.200s (%d×)", s, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func addresses(prefix string, n int) []string {
	locals := make([]string, n)
	for i := range locals {
		locals[i] = fmt.Sprintf("%s.%d", prefix, i+1)
	}
	return locals
}

// TestSlowBodiesDoNotTakeTheServicesOffline: 1,000 connections from one address, each
// sending a POST's headers and one byte of its 100-byte body, then waiting (and reopening
// any that close), against tasks and then users; then 300 such connections from 100
// addresses (3 each, under any per-address limit) against tasks. A legitimate client on an
// address of its own, on a new connection each time, must be served every time: GET /tasks,
// and login. A connection whose body is late is closed when a new one needs its place, and
// its address may then take places only from its own connections for a while.
func TestSlowBodiesDoNotTakeTheServicesOffline(t *testing.T) {
	raiseOpenFiles(t, 4096)
	s := startSystem(t)
	user := newLegitimate(t, s)
	idleLogins, idleLists := user.idle()

	// The attacker is a process of its own, at nice 19, as the login floods' is.
	flood := func(what string, url, path string, locals []string, n int, measure func() ([]time.Duration, []string)) (took []time.Duration, failed []string) {
		f := startFlood(t, url, "slowbody", "-workers", strconv.Itoa(n), "-path", path, "-from", strings.Join(locals, ","), "-max", "60s")
		time.Sleep(1500 * time.Millisecond) // held past the grace: late bodies are what fills the cap
		took, failed = measure()
		figure(t, "slow-bodies", "%s: the flood's connections ended %s", what, f.stop(t))
		return took, failed
	}
	// A new connection for every GET: each must be let in anew while the flood holds its places.
	user.client = harness.ClientFrom("127.0.0.2", false, 10*time.Second)
	lists := func() ([]time.Duration, []string) { return user.lists(100) }
	logins := func() ([]time.Duration, []string) { return user.logins(15, 100*time.Millisecond) }

	tasksLists, failedTasks := flood("1,000 from one address at tasks", s.tasks.URL, "/tasks", []string{"127.0.0.1"}, 1000, lists)
	usersLogins, failedUsers := flood("1,000 from one address at users", s.users.URL, "/login", []string{"127.0.0.1"}, 1000, logins)
	spreadLists, failedSpread := flood("300 from 100 addresses at tasks", s.tasks.URL, "/tasks", addresses("127.0.3", 100), 300, lists)

	figure(t, "slow-bodies", "GET /tasks p50 %s idle; %s with 1,000 slow bodies from one address (%d of 100 not 200); %s with 300 from 100 addresses (%d of 100 not 200); target ≤ 3× idle",
		ms(percentile(idleLists, 50)), ms(percentile(tasksLists, 50)), len(failedTasks), ms(percentile(spreadLists, 50)), len(failedSpread))
	figure(t, "slow-bodies", "login p50 %s idle; %s with 1,000 slow bodies from one address at users (%d of 15 not 200); target ≤ 3× idle",
		ms(percentile(idleLogins, 50)), ms(percentile(usersLogins, 50)), len(failedUsers))
	// CI's log keeps the figures but may cut the errors: say why they failed here too.
	for what, failed := range map[string][]string{"tasks, one address": failedTasks, "users, one address": failedUsers, "tasks, 100 addresses": failedSpread} {
		if len(failed) > 0 {
			figure(t, "slow-bodies", "%s: legitimate requests failed: %s", what, tallied(failed))
		}
	}
	for what, failed := range map[string][]string{
		"GET /tasks with 1,000 slow bodies from one address": failedTasks,
		"login with 1,000 slow bodies from one address":      failedUsers,
		"GET /tasks with 300 slow bodies from 100 addresses": failedSpread,
	} {
		if len(failed) > 0 {
			t.Errorf("%s: %d legitimate requests failed: %q", what, len(failed), failed)
		}
	}
	if status, err := harness.Send("GET", s.tasks.URL+"/readyz", "", nil); err != nil || status != http.StatusOK {
		t.Errorf("tasks /readyz after the floods: %d %v", status, err)
	}
	for _, p := range []*harness.Process{s.users, s.tasks} {
		if lines := errorLines(p); len(lines) > 0 {
			t.Errorf("%s logged %d ERROR lines under the floods, e.g. %.300s", p.Name, len(lines), lines[0])
		}
	}
}
