package hardening

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/e2e/stack"
)

// hammer runs workers that send requests made by next until stop closes, each at most
// perWorker times. It returns what got the wanted status.
func hammer(workers, perWorker int, want int, next func(worker, i int) (string, any), send func(url string, body any) (int, error), stop <-chan struct{}) (acked []string) {
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
				id, body := next(w, i)
				status, err := send(id, body)
				if err != nil {
					return // the server is gone
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

// TestKillDuringConcurrentPostsLosesNoAcknowledgedTask kills tasks with SIGKILL while 16
// clients POST, three times over; a crash in the middle of a write is modelled by appending
// a half record before each restart. Every task that got a 201 must be there afterwards, and
// the file must stay loadable by the original service.
func TestKillDuringConcurrentPostsLosesNoAcknowledgedTask(t *testing.T) {
	s := startSystem(t)
	token := stack.Login(t, s.users.URL, stack.DemoEmail, stack.DemoPassword)
	path := filepath.Join(s.tasksFolder, "tasks.txt")
	const rounds, workers, perWorker = 3, 16, 200
	var acked []string
	for round := range rounds {
		var sent atomic.Int64
		stop := make(chan struct{})
		done := make(chan []string)
		go func() {
			done <- hammer(workers, perWorker, http.StatusCreated,
				func(w, i int) (string, any) {
					sent.Add(1)
					id := fmt.Sprintf("r%d-%s", round, title(w, i))
					return id, map[string]string{"title": id, "text": "written while tasks is killed"}
				},
				func(id string, body any) (int, error) { return stack.Send("POST", s.tasks.URL+"/tasks", token, body) },
				stop)
		}()
		for sent.Load() < 300 {
			time.Sleep(5 * time.Millisecond)
		}
		s.tasks.Kill()
		close(stop)
		roundAcked := <-done
		acked = append(acked, roundAcked...)

		appendTo(t, path, `{"title":"half a record, as a write cut by kill -9 lea`)
		s.tasks.Restart(t)
		t.Logf("round %d: %d requests sent, %d acknowledged before SIGKILL", round+1, sent.Load(), len(roundAcked))
	}

	listed := map[string]bool{}
	a := stack.Call(t, "GET", s.tasks.URL+"/tasks", token, nil)
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
		if status, err := stack.Send("POST", s.tasks.URL+"/tasks", token, map[string]string{"title": fmt.Sprintf("after-%d", i)}); err != nil || status != http.StatusCreated {
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
	const rounds, workers, perWorker = 3, 16, 100
	var acked []string
	for round := range rounds {
		var sent atomic.Int64
		stop := make(chan struct{})
		done := make(chan []string)
		go func() {
			done <- hammer(workers, perWorker, http.StatusCreated,
				func(w, i int) (string, any) {
					sent.Add(1)
					email := fmt.Sprintf("r%d-%s@example.com", round, title(w, i))
					return email, map[string]string{"email": email, "password": "pw-" + email}
				},
				func(_ string, body any) (int, error) { return stack.Send("POST", s.users.URL+"/signup", "", body) },
				stop)
		}()
		for sent.Load() < 150 {
			time.Sleep(5 * time.Millisecond)
		}
		s.users.Kill()
		close(stop)
		roundAcked := <-done
		acked = append(acked, roundAcked...)
		appendTo(t, path, `{"id":"X","email":"torn@example.com","passwordHa`)
		s.users.Restart(t)
		t.Logf("round %d: %d signups sent, %d acknowledged before SIGKILL", round+1, sent.Load(), len(roundAcked))
	}

	for _, email := range acked {
		if status, err := stack.Send("POST", s.users.URL+"/login", "", map[string]string{"email": email, "password": "pw-" + email}); err != nil || status != http.StatusOK {
			t.Fatalf("%s got a 201 at signup but cannot log in after the kills: %d %v", email, status, err)
		}
	}
	if status, _ := stack.Send("POST", s.users.URL+"/signup", "", map[string]string{"email": "after@example.com", "password": "pw"}); status != http.StatusCreated {
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
