package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/filestore"
	"github.com/kub-demo/kub-demo/services/tasks/internal/pgstore"
	"github.com/kub-demo/kub-demo/services/tasks/internal/server"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
	"github.com/kub-demo/kub-demo/storage/pgdb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunTests(m)) }

// opener opens a store on one test's storage: again and again, for restarts and replicas.
// Every store it opens is closed when the test ends.
type opener func(t *testing.T, opts tasks.Options) tasks.Store

// backend makes empty storage for one test.
type backend struct {
	name       string
	newStorage func(t *testing.T) opener
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var backends = []backend{
	{"file", func(t *testing.T) opener {
		folder := t.TempDir()
		return func(t *testing.T, opts tasks.Options) tasks.Store {
			s, err := filestore.Open(folder, quiet, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}},
	{"postgres", func(t *testing.T) opener {
		url := pgtest.NewDatabase(t)
		return func(t *testing.T, opts tasks.Options) tasks.Store {
			s, err := pgstore.Open(pgdb.Config{URL: url, MaxConns: 4, Timeout: 10 * time.Second}, opts, quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
}

// forEach runs test once per backend, each with empty storage.
func forEach(t *testing.T, test func(t *testing.T, open opener)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.newStorage(t)) })
	}
}

// tokens are user ids: the fake auth accepts any token but "bad" and says it is its user's.
var tokens = &fakeVerifier{}

type fakeVerifier struct{}

func (*fakeVerifier) VerifyToken(_ context.Context, token string) (string, error) {
	if token == "bad" {
		return "", authapi.ErrRejected
	}
	return token, nil
}

var _ server.Verifier = (*fakeVerifier)(nil)

// serve answers the public API over tasks; it returns the base URL.
func serve(t *testing.T, store tasks.Store) string {
	srv := httptest.NewServer(server.Routes(server.Deps{Log: quiet, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Tasks: store, Auth: tokens}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type answer struct {
	status int
	raw    string
}

func (a answer) message() string {
	var body struct{ Message string }
	json.Unmarshal([]byte(a.raw), &body)
	return body.Message
}

func do(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(raw)}
}

func post(t *testing.T, base, token string, task tasks.Task) answer {
	t.Helper()
	body, _ := json.Marshal(task)
	return do(t, "POST", base+"/tasks", token, string(body))
}

// listed is the tasks of a list answer, in order.
func listed(t *testing.T, a answer) []tasks.Task {
	t.Helper()
	var body struct {
		Message string
		Tasks   []tasks.Task
	}
	if a.status != 200 || json.Unmarshal([]byte(a.raw), &body) != nil || body.Message != "Tasks loaded." {
		t.Fatalf("list: %d %s", a.status, a.raw)
	}
	return body.Tasks
}

func titles(list []tasks.Task) string {
	var out []string
	for _, task := range list {
		out = append(out, task.Title)
	}
	return strings.Join(out, " ")
}

// TestCourseFlow: the answers of the course's POST and GET, byte for byte.
func TestCourseFlow(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		base := serve(t, open(t, tasks.Options{}))
		if got := post(t, base, "alice", tasks.Task{Title: "Buy milk", Text: "2 litres"}); got.status != 201 ||
			got.raw != `{"message":"Task stored.","createdTask":{"title":"Buy milk","text":"2 litres"}}` {
			t.Fatalf("POST: %d %q", got.status, got.raw)
		}
		if got := do(t, "GET", base+"/tasks", "alice", ""); got.status != 200 ||
			got.raw != `{"message":"Tasks loaded.","tasks":[{"title":"Buy milk","text":"2 litres"}]}` {
			t.Fatalf("GET: %d %q", got.status, got.raw)
		}
		if got := do(t, "GET", base+"/tasks", "bad", ""); got.status != 401 {
			t.Fatalf("GET with a bad token: %d %s", got.status, got.raw)
		}
	})
}

// TestEachUserSeesTheirOwnAndUnownedTasks: Bob does not see Alice's tasks; both see the tasks
// with no owner (the original's), all in stored order.
func TestEachUserSeesTheirOwnAndUnownedTasks(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		store := open(t, tasks.Options{})
		base := serve(t, store)
		steps := []struct{ owner, title string }{
			{"", "from the original"}, {"alice", "bank PIN"}, {"bob", "bob's"}, {"", "also the original's"}, {"alice", "alice's second"},
		}
		for _, s := range steps {
			if s.owner == "" {
				if err := store.Append(t.Context(), "", tasks.Task{Title: s.title}); err != nil {
					t.Fatal(err)
				}
			} else if got := post(t, base, s.owner, tasks.Task{Title: s.title}); got.status != 201 {
				t.Fatalf("POST: %d %s", got.status, got.raw)
			}
		}
		for viewer, want := range map[string]string{
			"alice":   "from the original bank PIN also the original's alice's second",
			"bob":     "from the original bob's also the original's",
			"mallory": "from the original also the original's",
		} {
			if got := titles(listed(t, do(t, "GET", base+"/tasks", viewer, ""))); got != want {
				t.Errorf("%s sees %q, want %q", viewer, got, want)
			}
		}
	})
}

func TestSharedModeIsTheCoursesOneList(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		base := serve(t, open(t, tasks.Options{}))
		post(t, base, "alice", tasks.Task{Title: "a"})
		post(t, base, "bob", tasks.Task{Title: "b"})
		shared := serve(t, open(t, tasks.Options{Shared: true}))
		for _, viewer := range []string{"alice", "bob", "anyone"} {
			if got := titles(listed(t, do(t, "GET", shared+"/tasks", viewer, ""))); got != "a b" {
				t.Errorf("shared: %s sees %q, want \"a b\"", viewer, got)
			}
		}
		if got := do(t, "GET", shared+"/tasks?limit=1&offset=1", "anyone", ""); !strings.HasSuffix(got.raw, `"tasks":[{"title":"b","text":""}],"total":2,"offset":1,"limit":1}`) {
			t.Errorf("shared page: %s", got.raw)
		}
	})
}

// TestAwkwardTextIsAnsweredAsTheOriginalDid: what a client stores comes back the same, in the
// bytes the original's res.json wrote (web.Marshal), whatever it holds.
func TestAwkwardTextIsAnsweredAsTheOriginalDid(t *testing.T) {
	awkward := []tasks.Task{
		{Title: "TASK_SPLIT inside", Text: "before TASK_SPLIT after TASK_SPLITASK_SPLIT"},
		{Title: "<b>bold</b> & co", Text: `"quotes" \ backslash / slash`},
		{Title: "a start-of-heading \x01 and a bell \x07", Text: "tab\tnewline\nreturn\r\x1f"},
		{Title: "Café ☕ née 🚀", Text: "line separator \u2028 paragraph \u2029"},
		{Title: "'single' $1 %s ?", Text: "--; DROP TABLE tasks; {}[]"},
	}
	// As the original wrote them: node's JSON.stringify of the same tasks.
	want := "[" +
		`{"title":"TASK_SPLIT inside","text":"before TASK_SPLIT after TASK_SPLITASK_SPLIT"},` +
		`{"title":"<b>bold</b> & co","text":"\"quotes\" \\ backslash / slash"},` +
		`{"title":"a start-of-heading \u0001 and a bell \u0007","text":"tab\tnewline\nreturn\r\u001f"},` +
		`{"title":"Café ☕ née 🚀","text":"line separator ` + "\u2028" + ` paragraph ` + "\u2029" + `"},` +
		`{"title":"'single' $1 %s ?","text":"--; DROP TABLE tasks; {}[]"}` + "]"
	forEach(t, func(t *testing.T, open opener) {
		base := serve(t, open(t, tasks.Options{}))
		for _, task := range awkward {
			if got := post(t, base, "alice", task); got.status != 201 {
				t.Fatalf("POST %q: %d %s", task.Title, got.status, got.raw)
			}
		}
		// NUL is the one character refused, in both stores: PostgreSQL text cannot hold it.
		if got := post(t, base, "alice", tasks.Task{Title: "a NUL \x00"}); got.status != 422 || !strings.Contains(got.raw, "NUL") {
			t.Errorf("a NUL in the title: %d %s, want 422 naming NUL", got.status, got.raw)
		}
		got := do(t, "GET", base+"/tasks", "alice", "")
		if got.raw != `{"message":"Tasks loaded.","tasks":`+want+"}" {
			t.Fatalf("GET answered\n%s\nwant the tasks as\n%s", got.raw, want)
		}
	})
}

// TestQuotasAndTaskSize: the same refusals, with the same messages.
func TestQuotasAndTaskSize(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		base := serve(t, open(t, tasks.Options{MaxTasksPerUser: 3, MaxBytesPerUser: 200}))
		for i := range 3 {
			if got := post(t, base, "alice", tasks.Task{Title: fmt.Sprint(i)}); got.status != 201 {
				t.Fatalf("task %d: %d %s", i, got.status, got.raw)
			}
		}
		if got := post(t, base, "alice", tasks.Task{Title: "fourth"}); got.status != 507 ||
			got.message() != "Your task quota is used up: 3 tasks, the most a user may have." {
			t.Errorf("a fourth task: %d %s", got.status, got.raw)
		}
		if got := post(t, base, "bob", tasks.Task{Title: "bob", Text: strings.Repeat("x", 150)}); got.status != 201 {
			t.Fatalf("bob's first: %d %s", got.status, got.raw)
		}
		if got := post(t, base, "bob", tasks.Task{Title: "bob", Text: strings.Repeat("x", 50)}); got.status != 507 ||
			got.message() != "Your task quota is used up: 200 bytes, the most a user's tasks may take." {
			t.Errorf("past bob's bytes: %d %s", got.status, got.raw)
		}
		if got := post(t, base, "carol", tasks.Task{Title: "big", Text: strings.Repeat("y", 250)}); got.status != 507 {
			t.Errorf("a first task over the bytes quota: %d %s", got.status, got.raw)
		}
		// 3,000 control characters are 3,000 characters but 18,000 bytes once stored.
		if got := post(t, base, "dave", tasks.Task{Title: "t", Text: strings.Repeat("\x01", 3000)}); got.status != 413 {
			t.Errorf("a task of 18 KB: %d %s", got.status, got.raw)
		}
		if got := titles(listed(t, do(t, "GET", base+"/tasks", "alice", ""))); got != "0 1 2" {
			t.Errorf("alice's tasks after the refusals: %q", got)
		}
	})
}

// TestPagesAreTheMergeInStoredOrder: every page of a user's view, their tasks merged with the
// unowned ones among another user's, is the slice of the whole list computed the slow way.
func TestPagesAreTheMergeInStoredOrder(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		store := open(t, tasks.Options{})
		rng := rand.New(rand.NewPCG(3, 4))
		var want []tasks.Task
		for i := range 1500 {
			task := tasks.Task{Title: fmt.Sprint(i), Text: strings.Repeat("x", rng.IntN(50))}
			owner := []string{"", "viewer", "someone else"}[rng.IntN(3)]
			if err := store.Append(t.Context(), owner, task); err != nil {
				t.Fatal(err)
			}
			if owner != "someone else" {
				want = append(want, task)
			}
		}
		base := serve(t, store)
		if got := listed(t, do(t, "GET", base+"/tasks", "viewer", "")); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("the whole list: %d tasks, not the %d expected in order", len(got), len(want))
		}
		n := len(want)
		for _, p := range []struct{ offset, limit int }{{0, 1}, {0, 50}, {1, 50}, {377, 50}, {n - 3, 50}, {n - 1, 1}, {n, 5}, {n + 10, 5}, {400, 1000}} {
			got := do(t, "GET", fmt.Sprintf("%s/tasks?offset=%d&limit=%d", base, p.offset, p.limit), "viewer", "")
			end := min(p.offset+p.limit, n)
			page, _ := web.Marshal(want[min(p.offset, end):end])
			tail := fmt.Sprintf(`,"total":%d,"offset":%d,"limit":%d}`, n, p.offset, p.limit)
			if got.raw != `{"message":"Tasks loaded.","tasks":`+string(page)+tail {
				t.Fatalf("offset %d limit %d: %.300s", p.offset, p.limit, got.raw)
			}
		}
	})
}

// TestTwoReplicasUnderConcurrentPosts: two stores on one storage (two replicas) take
// concurrent POSTs; every 201 is there once, and both list every task.
func TestTwoReplicasUnderConcurrentPosts(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		replicas := []string{serve(t, open(t, tasks.Options{})), serve(t, open(t, tasks.Options{}))}
		const workers, each = 8, 25
		var wg sync.WaitGroup
		failures := make(chan string, 2*workers*each)
		for r, base := range replicas {
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						title := fmt.Sprintf("r%d-w%d-%d", r, w, i)
						body, _ := json.Marshal(tasks.Task{Title: title})
						req, _ := http.NewRequest("POST", base+"/tasks", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer writer")
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							failures <- err.Error()
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 201 {
							failures <- fmt.Sprintf("%s: %d", title, resp.StatusCode)
						}
					}
				}()
			}
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Fatal(f)
		}
		for r, base := range replicas {
			got := listed(t, do(t, "GET", base+"/tasks", "writer", ""))
			seen := map[string]int{}
			for _, task := range got {
				seen[task.Title]++
			}
			if len(got) != 2*workers*each || len(seen) != len(got) {
				t.Fatalf("replica %d lists %d tasks, %d distinct, want %d", r, len(got), len(seen), 2*workers*each)
			}
		}
	})
}

func TestTasksOutliveARestart(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		// A subtest's store and server are closed when it ends: the first process stops.
		t.Run("before", func(t *testing.T) {
			post(t, serve(t, open(t, tasks.Options{})), "alice", tasks.Task{Title: "kept", Text: "across a restart"})
		})
		again := serve(t, open(t, tasks.Options{}))
		if got := listed(t, do(t, "GET", again+"/tasks", "alice", "")); len(got) != 1 || got[0] != (tasks.Task{Title: "kept", Text: "across a restart"}) {
			t.Fatalf("after a restart: %v", got)
		}
	})
}

// TestImportedFileIsTheSameList: a tasks.txt, as the original and the file store wrote it,
// lists the same read by the file store as imported into the database.
func TestImportedFileIsTheSameList(t *testing.T) {
	folder := t.TempDir()
	legacy := `{"title":"Buy milk","text":"2 litres"}TASK_SPLIT{"title":"<b>&</b>"}TASK_SPLIT{"title":42,"text":"n"}TASK_SPLIT` +
		`{"title":"alice's","text":"","owner":"alice"}TASK_SPLIT{"title":"T\u0041SK_SPLIT","text":"é"}TASK_SPLIT`
	if err := os.WriteFile(filepath.Join(folder, filestore.FileName), []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := filestore.Open(folder, quiet, tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	db, err := pgstore.Open(pgdb.Config{URL: pgtest.NewDatabase(t), MaxConns: 2, Timeout: 10 * time.Second}, tasks.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Import(t.Context(), filepath.Join(folder, filestore.FileName)); err != nil {
		t.Fatal(err)
	}
	for _, viewer := range []string{"alice", "bob"} {
		fromFile := do(t, "GET", serve(t, file)+"/tasks", viewer, "")
		fromDB := do(t, "GET", serve(t, db)+"/tasks", viewer, "")
		if fromFile.status != 200 || fromFile.raw != fromDB.raw {
			t.Errorf("%s: the file store answers\n%s\nthe database\n%s", viewer, fromFile.raw, fromDB.raw)
		}
	}
}
