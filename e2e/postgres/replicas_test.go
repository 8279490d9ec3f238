// Package postgres runs the real binaries against a real PostgreSQL: replicas of users and
// tasks sharing one database, kill -9 under load, the move from the files to the database
// with -import, and the compose file's PostgreSQL variant in containers.
package postgres

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/harness/pgtest"
)

func TestMain(m *testing.M) {
	code := harness.RunTests(m)
	pgtest.StopShared()
	os.Exit(code)
}

const jwtSecret = "the-postgres-e2e-tests-signing-key-0123456789"

// system is auth, users and tasks replicas, all users and tasks on one database.
type system struct {
	auth  *harness.Process
	users []*harness.Process
	tasks []*harness.Process
	url   string // DATABASE_URL
}

func startSystem(t *testing.T, users, tasks int, tasksEnv ...string) *system {
	t.Helper()
	bin := harness.Build(t)
	s := &system{url: pgtest.NewDatabase(t)}
	s.auth = harness.Start(t, bin.Auth, []string{"JWT_SECRET=" + jwtSecret, "BCRYPT_COST=4"})
	common := []string{"AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port), "DATABASE_URL=" + s.url, "DB_MAX_CONNS=4"}
	for range users {
		// Many signups from one address: not what the throttle is for.
		s.users = append(s.users, harness.Start(t, bin.Users, append(common, "USERS_FOLDER="+t.TempDir(), "SIGNUPS_PER_CLIENT=0")))
	}
	for range tasks {
		s.tasks = append(s.tasks, harness.Start(t, bin.Tasks, append(append(common, "TASKS_FOLDER="+t.TempDir()), tasksEnv...)))
	}
	for _, p := range append(append([]*harness.Process{}, s.users...), s.tasks...) {
		waitReady(t, p)
	}
	return s
}

// waitReady polls /readyz: with a database, ready means migrated (and auth answered).
func waitReady(t *testing.T, p *harness.Process) {
	t.Helper()
	harness.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		return harness.Expect("GET", p.URL+"/readyz", "", nil, http.StatusOK)
	})
}

// listed is every title GET /tasks answers.
func listed(t *testing.T, tasksURL, token string) map[string]int {
	t.Helper()
	a := harness.Call(t, "GET", tasksURL+"/tasks", token, nil)
	if a.Status != http.StatusOK {
		t.Fatalf("GET /tasks: %d %s", a.Status, a.Raw)
	}
	titles := map[string]int{}
	for _, raw := range a.Body["tasks"].([]any) {
		titles[raw.(map[string]any)["title"].(string)]++
	}
	return titles
}

// TestTwoTasksReplicasSeeEveryTask: concurrent POSTs through two tasks processes on one
// database; both list every one, once.
func TestTwoTasksReplicasSeeEveryTask(t *testing.T) {
	s := startSystem(t, 1, 2, "TASKS_PER_USER=0", "TASK_BYTES_PER_USER=0")
	token := harness.Login(t, s.users[0].URL, harness.DemoEmail, harness.DemoPassword)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var created atomic.Int64
	for r, replica := range s.tasks {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					status, err := harness.Send("POST", replica.URL+"/tasks", token, map[string]string{"title": fmt.Sprintf("r%d-w%d-%d", r, w, i)})
					if err != nil || status != http.StatusCreated {
						t.Errorf("POST to replica %d: %d %v", r, status, err)
						return
					}
					created.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	for r, replica := range s.tasks {
		titles := listed(t, replica.URL, token)
		if len(titles) != int(created.Load()) || int64(len(titles)) != 2*workers*each {
			t.Errorf("replica %d lists %d distinct tasks, want all %d", r, len(titles), created.Load())
		}
		for title, n := range titles {
			if n != 1 {
				t.Errorf("replica %d lists %s %d times", r, title, n)
			}
		}
	}
	t.Logf("two tasks processes, %d POSTs each: both list all %d, once each", workers*each, created.Load())
}

// TestKillOneTasksReplicaUnderLoad: 16 clients POST through two tasks processes; one of them
// gets SIGKILL mid-load, three times over, and restarts. Every task that got a 201 is listed
// afterwards, by both.
func TestKillOneTasksReplicaUnderLoad(t *testing.T) {
	s := startSystem(t, 1, 2, "TASKS_PER_USER=0", "TASK_BYTES_PER_USER=0")
	token := harness.Login(t, s.users[0].URL, harness.DemoEmail, harness.DemoPassword)
	victim, survivor := s.tasks[0], s.tasks[1]
	const rounds, workers, each, killAfter = 3, 16, 60, 300
	var acked []string
	ackedByVictim := 0
	for round := range rounds {
		var mu sync.Mutex
		var sent atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			target := []*harness.Process{victim, survivor}[w%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					title := fmt.Sprintf("round%d-w%d-%d", round, w, i)
					sent.Add(1)
					status, err := harness.Send("POST", target.URL+"/tasks", token, map[string]string{"title": title, "text": "sent while a replica is killed"})
					if err != nil {
						return // the victim is gone: this client stops
					}
					if status == http.StatusCreated {
						mu.Lock()
						acked = append(acked, title)
						if target == victim {
							ackedByVictim++
						}
						mu.Unlock()
					}
				}
			}()
		}
		for deadline := time.Now().Add(30 * time.Second); sent.Load() < killAfter && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
		victim.Kill()
		wg.Wait()
		victim.Restart(t)
		waitReady(t, victim)
		t.Logf("round %d: %d requests sent, SIGKILL to one replica after %d", round+1, sent.Load(), killAfter)
	}
	for _, replica := range s.tasks {
		titles := listed(t, replica.URL, token)
		missing := 0
		for _, title := range acked {
			if titles[title] != 1 {
				missing++
				t.Errorf("task %s got a 201 but is listed %d times", title, titles[title])
			}
		}
		t.Logf("replica on %d: %d acknowledged (%d by the killed one), %d found, %d missing; %d listed in all (requests cut by the kill may have been stored without their 201)",
			replica.Port, len(acked), ackedByVictim, len(acked)-missing, missing, len(titles))
	}
	if ackedByVictim == 0 {
		t.Fatal("the killed replica acknowledged nothing: the test proved nothing")
	}
}

// TestUsersReplicasShareAccounts: concurrent signups through two users processes, many for
// one email: one account per email, each process logs every user in.
func TestUsersReplicasShareAccounts(t *testing.T) {
	s := startSystem(t, 2, 0)
	const distinct, contested = 20, 10
	statuses := make(chan int, distinct+contested)
	var wg sync.WaitGroup
	for i := range distinct + contested {
		email := fmt.Sprintf("u%d@example.com", i)
		if i >= distinct {
			email = "same@example.com"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// auth sheds bcrypt work past a short queue (503 at once): a client tries again.
			status, err := 0, error(nil)
			for try := 0; try < 100; try++ {
				status, err = harness.Send("POST", s.users[i%2].URL+"/signup", "", map[string]string{"email": email, "password": "pw-" + email})
				if err != nil || status != http.StatusServiceUnavailable {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Error(err)
			}
			statuses <- status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for status := range statuses {
		count[status]++
	}
	if count[201] != distinct+1 || count[409] != contested-1 {
		t.Fatalf("statuses %v, want %d × 201 and %d × 409", count, distinct+1, contested-1)
	}
	for _, replica := range s.users {
		for i := range distinct {
			email := fmt.Sprintf("u%d@example.com", i)
			harness.Login(t, replica.URL, email, "pw-"+email)
		}
	}
}

// TestMoveFromFilesToTheDatabase: the files a deployment wrote are imported with the
// binaries' -import, and the same users and tasks are there once it runs on the database;
// importing again adds nothing.
func TestMoveFromFilesToTheDatabase(t *testing.T) {
	bin := harness.Build(t)
	auth := harness.Start(t, bin.Auth, []string{"JWT_SECRET=" + jwtSecret, "BCRYPT_COST=4"})
	authAddress := "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(auth.Port)
	usersFolder, tasksFolder := t.TempDir(), t.TempDir()
	users := harness.Start(t, bin.Users, []string{authAddress, "USERS_FOLDER=" + usersFolder})
	tasks := harness.Start(t, bin.Tasks, []string{authAddress, "TASKS_FOLDER=" + tasksFolder})
	if a := harness.Call(t, "POST", users.URL+"/signup", "", map[string]string{"email": "mover@example.com", "password": "moving-pw"}); a.Status != http.StatusCreated {
		t.Fatalf("signup: %d %s", a.Status, a.Raw)
	}
	token := harness.Login(t, users.URL, "mover@example.com", "moving-pw")
	for i := range 5 {
		if a := harness.Call(t, "POST", tasks.URL+"/tasks", token, map[string]string{"title": fmt.Sprintf("file task %d", i)}); a.Status != http.StatusCreated {
			t.Fatalf("POST task %d: %d %s", i, a.Status, a.Raw)
		}
	}
	before := harness.Call(t, "GET", tasks.URL+"/tasks", token, nil).Raw
	if !strings.Contains(before, `"title":"file task 4"`) {
		t.Fatalf("the file store does not list the tasks just stored: %s", before)
	}
	users.Stop()
	tasks.Stop()

	url := pgtest.NewDatabase(t)
	for range 2 { // the second time adds nothing
		for _, c := range []struct{ binary, file string }{{bin.Users, filepath.Join(usersFolder, "users.jsonl")}, {bin.Tasks, filepath.Join(tasksFolder, "tasks.txt")}} {
			cmd := exec.Command(c.binary, "-import", c.file)
			cmd.Env = []string{"DATABASE_URL=" + url}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"msg":"imported"`) {
				t.Fatalf("%s -import: %v\n%s", filepath.Base(c.binary), err, out)
			}
			t.Logf("%s -import: %s", filepath.Base(c.binary), lastLine(out))
		}
	}
	env := []string{authAddress, "DATABASE_URL=" + url}
	dbUsers := harness.Start(t, bin.Users, append(env, "USERS_FOLDER="+t.TempDir()))
	dbTasks := harness.Start(t, bin.Tasks, append(env, "TASKS_FOLDER="+t.TempDir()))
	waitReady(t, dbUsers)
	waitReady(t, dbTasks)
	token = harness.Login(t, dbUsers.URL, "mover@example.com", "moving-pw")
	if after := harness.Call(t, "GET", dbTasks.URL+"/tasks", token, nil).Raw; after != before {
		t.Fatalf("GET /tasks on the files:\n%s\non the database after the import:\n%s", before, after)
	}
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
