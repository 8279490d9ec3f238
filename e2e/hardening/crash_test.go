package hardening

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// hammer runs workers that each call send up to perWorker times, until stop closes or the
// server is gone. It returns the ids whose request got the wanted status.
func hammer(workers, perWorker, want int, send func(worker, i int) (id string, status int, err error), stop <-chan struct{}) (acked []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				select {
				case <-stop:
					return
				default:
				}
				id, status, err := send(w, i)
				if err != nil {
					return
				}
				if status == want {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

// killRounds, rounds times: 16 workers send requests; once killAfter are sent, p gets SIGKILL;
// torn is appended to path, as a write cut short by the kill leaves it; p restarts. It
// returns the ids whose request got a 201.
func killRounds(t *testing.T, p *harness.Process, path, torn string, rounds, perWorker, killAfter int,
	send func(round, worker, i int) (id string, status int, err error)) []string {
	t.Helper()
	var acked []string
	for round := range rounds {
		var sent atomic.Int64
		stop := make(chan struct{})
		done := make(chan []string)
		go func() {
			done <- hammer(16, perWorker, http.StatusCreated, func(w, i int) (string, int, error) {
				sent.Add(1)
				return send(round, w, i)
			}, stop)
		}()
		for deadline := time.Now().Add(30 * time.Second); sent.Load() < int64(killAfter); {
			if time.Now().After(deadline) {
				close(stop)
				<-done
				t.Fatalf("round %d: only %d of %d requests sent in 30s", round+1, sent.Load(), killAfter)
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.Kill()
		close(stop)
		roundAcked := <-done
		acked = append(acked, roundAcked...)
		appendTo(t, path, torn)
		p.Restart(t)
		t.Logf("round %d: %d requests sent, %d acknowledged before SIGKILL", round+1, sent.Load(), len(roundAcked))
	}
	return acked
}

// TestKillDuringConcurrentPostsLosesNoAcknowledgedTask kills tasks with SIGKILL while 16
// clients POST, three times over; a crash in the middle of a write is modelled by appending
// a half record before each restart. Every task that got a 201 must be there afterwards, and
// the file must stay loadable by the original service.
func TestKillDuringConcurrentPostsLosesNoAcknowledgedTask(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	path := filepath.Join(s.tasksFolder, "tasks.txt")
	const rounds = 3
	acked := killRounds(t, s.tasks, path, `{"title":"half a record, as a write cut by kill -9 lea`, rounds, 200, 300,
		func(round, w, i int) (string, int, error) {
			id := fmt.Sprintf("r%d-%s", round, title(w, i))
			status, err := harness.Send("POST", s.tasks.URL+"/tasks", token, map[string]string{"title": id, "text": "written while tasks is killed"})
			return id, status, err
		})

	listed := map[string]bool{}
	a := harness.Call(t, "GET", s.tasks.URL+"/tasks", token, nil)
	for _, raw := range a.Body["tasks"].([]any) {
		listed[raw.(map[string]any)["title"].(string)] = true
	}
	for _, id := range acked {
		if !listed[id] {
			t.Fatalf("task %s got a 201 but is gone after the kill", id)
		}
	}

	// New writes go after the torn tail, which is cut off, not glued to.
	for i := range 20 {
		if status, err := harness.Send("POST", s.tasks.URL+"/tasks", token, map[string]string{"title": fmt.Sprintf("after-%d", i)}); err != nil || status != http.StatusCreated {
			t.Fatalf("POST after restart: %d %v", status, err)
		}
	}
	titles, tail := originalReader(t, path)
	if len(tail) != 0 {
		t.Fatalf("tasks.txt ends with %q after a clean append", tail)
	}
	for title, n := range count(titles) {
		if n > 1 {
			t.Fatalf("task %s is stored %d times", title, n)
		}
	}
	if titles[len(titles)-1] != "after-19" {
		t.Fatalf("the last record is %q, want after-19", titles[len(titles)-1])
	}
	t.Logf("%d acknowledged tasks over %d SIGKILLs: all %d there; file holds %d records, all loadable by the original", len(acked), rounds, len(acked), len(titles))
}

// TestKillDuringConcurrentSignupsLosesNoAcknowledgedUser is the same for users.jsonl.
func TestKillDuringConcurrentSignupsLosesNoAcknowledgedUser(t *testing.T) {
	s := startSystem(t)
	path := filepath.Join(s.usersFolder, "users.jsonl")
	const rounds = 3
	acked := killRounds(t, s.users, path, `{"id":"X","email":"torn@example.com","passwordHa`, rounds, 100, 150,
		func(round, w, i int) (string, int, error) {
			email := fmt.Sprintf("r%d-%s@example.com", round, title(w, i))
			status, err := harness.Send("POST", s.users.URL+"/signup", "", map[string]string{"email": email, "password": "pw-" + email})
			return email, status, err
		})

	for _, email := range acked {
		if status, err := harness.Send("POST", s.users.URL+"/login", "", map[string]string{"email": email, "password": "pw-" + email}); err != nil || status != http.StatusOK {
			t.Fatalf("%s got a 201 at signup but cannot log in after the kills: %d %v", email, status, err)
		}
	}
	if status, _ := harness.Send("POST", s.users.URL+"/signup", "", map[string]string{"email": "after@example.com", "password": "pw"}); status != http.StatusCreated {
		t.Fatalf("signup after restart: %d", status)
	}
	emails, tail := usersFileEmails(t, path)
	if len(tail) != 0 {
		t.Fatalf("users.jsonl ends with %q after a clean append", tail)
	}
	for email, n := range count(emails) {
		if n > 1 {
			t.Fatalf("%s is stored %d times", email, n)
		}
	}
	t.Logf("%d acknowledged signups over %d SIGKILLs: all can log in; file holds %d users, every line whole", len(acked), rounds, len(emails))
}
