package hardening

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// accountFrom signs email up and logs it in from the loopback address local, and returns the
// token.
func accountFrom(t *testing.T, usersURL, local, email string) string {
	t.Helper()
	client := harness.ClientFrom(local, false, 10*time.Second)
	creds := map[string]string{"email": email, "password": "a-password"}
	if a, err := harness.DoWith(client, "POST", usersURL+"/signup", "", creds); err != nil || a.Status != http.StatusCreated {
		t.Fatalf("signup of %s from %s: %d %v %s", email, local, a.Status, err, a.Raw)
	}
	token, status, _, err := loginFrom(client, usersURL, email, "a-password")
	if err != nil || status != http.StatusOK {
		t.Fatalf("login of %s: %d %v", email, status, err)
	}
	return token
}

// TestQuotaIsExactUnder256ConcurrentPosts: one user POSTs 256 tasks at once with
// TASKS_PER_USER=20, to one tasks process and then to two sharing one folder (replicas):
// exactly 20 are stored each time, the rest answered 507.
func TestQuotaIsExactUnder256ConcurrentPosts(t *testing.T) {
	bin := harness.Build(t)
	for _, replicas := range []int{1, 2} {
		t.Run(strconv.Itoa(replicas), func(t *testing.T) {
			s := startSystem(t, "TASKS_PER_USER=20")
			tasks := []*harness.Process{s.tasks}
			if replicas == 2 {
				tasks = append(tasks, harness.Start(t, bin.Tasks, []string{"AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port), "TASKS_FOLDER=" + s.tasksFolder, "TASKS_PER_USER=20"}))
			}
			token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
			var answers counter
			var wg sync.WaitGroup
			for i := range 256 {
				wg.Go(func() {
					status, _, _, err := do(client, "POST", tasks[i%replicas].URL+"/tasks", token, mustJSON(map[string]string{"title": fmt.Sprint("concurrent ", i)}))
					answers.add(fmt.Sprintf("%d %v", status, err))
				})
			}
			wg.Wait()
			listed := 0
			for _, p := range tasks {
				a := harness.Call(t, "GET", p.URL+"/tasks", token, nil)
				list, _ := a.Body["tasks"].([]any)
				listed = max(listed, len(list))
			}
			figure(t, "quota-exact", "%d replica(s), 256 POSTs at once by one user with TASKS_PER_USER=20: %s; %d listed", replicas, &answers, listed)
			if answers.get("201 <nil>") != 20 || answers.get("507 <nil>") != 236 || listed != 20 {
				t.Errorf("%d replica(s): %s, %d listed; want 20 × 201, 236 × 507, 20 listed", replicas, &answers, listed)
			}
		})
	}
}

// TestFillersLeaveRoomForNewUsers: 50 accounts signed up from 10 addresses store ~15.5 KB
// tasks as fast as they can, with GOMEMLIMIT=64MiB (a store of 24 MiB) and the default
// quotas, until every one of them gets 507. A user who signs up then can still store a 1 KB
// task: the last eighth of the store is kept for users with under 16 KiB of tasks.
func TestFillersLeaveRoomForNewUsers(t *testing.T) {
	s := startSystem(t, "GOMEMLIMIT=64MiB")
	var tokens []string
	for i := range 50 {
		tokens = append(tokens, accountFrom(t, s.users.URL, fmt.Sprintf("127.0.5.%d", i%10+1), fmt.Sprintf("filler-%d@example.com", i)))
	}
	text := strings.Repeat("é", 5_000) + strings.Repeat("x", 4_900)
	var created atomic.Int64
	var answers counter
	deadline := time.Now().Add(90 * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(tokens) && time.Now().Before(deadline); i += 16 {
				for j := 0; time.Now().Before(deadline); j++ { // this account until it is refused
					status, _, _, err := do(harness.Client, "POST", s.tasks.URL+"/tasks", tokens[i], mustJSON(map[string]string{"title": fmt.Sprint(i, "-", j), "text": text}))
					if err == nil && status == http.StatusCreated {
						created.Add(1)
						continue
					}
					answers.add(fmt.Sprintf("%d %v", status, err))
					break
				}
			}
		})
	}
	wg.Wait()
	filled := time.Since(start)
	newcomer := accountFrom(t, s.users.URL, "127.0.5.99", "newcomer@example.com")
	a := harness.Call(t, "POST", s.tasks.URL+"/tasks", newcomer, map[string]string{"title": "a newcomer's task", "text": strings.Repeat("n", 1000)})
	figure(t, "store-fill", "50 accounts from 10 addresses: %d tasks of ~15.5 KB stored in %s, then %s; a new user's 1 KB task: %d %s",
		created.Load(), filled.Round(time.Millisecond), &answers, a.Status, a.Message())
	if answers.get("507 <nil>") != 50 {
		t.Errorf("the fillers' last answers: %s, want 507 for all 50 (within 90 s)", &answers)
	}
	if a.Status != http.StatusCreated {
		t.Errorf("a new user's 1 KB task once the fillers are refused: %d %s, want 201", a.Status, a.Raw)
	}
}
