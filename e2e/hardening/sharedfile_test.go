package hardening

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kub-demo/kub-demo/harness"
)

// TestTwoProcessesShareOneTasksFile runs two tasks processes on one folder, as two replicas on
// a shared volume, each taking several hundred concurrent POSTs.
func TestTwoProcessesShareOneTasksFile(t *testing.T) {
	s := startSystem(t)
	second := harness.Start(t, harness.Build(t).Tasks, []string{
		"AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(s.auth.Port), "TASKS_FOLDER=" + s.tasksFolder,
	})
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword)
	const workers, perWorker = 16, 25 // 400 POSTs to each process
	results := make(chan []string, 2)
	for _, replica := range []*harness.Process{s.tasks, second} {
		go func() {
			results <- hammer(workers, perWorker, http.StatusCreated, func(w, i int) (string, int, error) {
				id := fmt.Sprintf("p%d-%s", replica.Port, title(w, i))
				status, err := harness.Send("POST", replica.URL+"/tasks", token, map[string]string{"title": id, "text": "one of two replicas"})
				return id, status, err
			}, nil)
		}()
	}
	acked := append(<-results, <-results...)
	if len(acked) != 2*workers*perWorker {
		t.Fatalf("%d of %d POSTs got a 201", len(acked), 2*workers*perWorker)
	}
	titles, tail := originalReader(t, filepath.Join(s.tasksFolder, "tasks.txt"))
	if len(tail) != 0 || len(titles) != len(acked) {
		t.Fatalf("tasks.txt holds %d records and a tail of %q, want exactly %d", len(titles), tail, len(acked))
	}
	stored := count(titles)
	for _, id := range acked {
		if stored[id] != 1 {
			t.Fatalf("task %s is stored %d times", id, stored[id])
		}
	}
	for _, replica := range []*harness.Process{s.tasks, second} {
		a := harness.Call(t, "GET", replica.URL+"/tasks", token, nil)
		if n := len(a.Body["tasks"].([]any)); n != len(acked) {
			t.Errorf("replica on port %d lists %d tasks, want all %d", replica.Port, n, len(acked))
		}
	}
	t.Logf("two processes, %d POSTs each: %d records, none interleaved, both list all", workers*perWorker, len(titles))
}
