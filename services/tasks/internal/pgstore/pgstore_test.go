package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
	"github.com/kub-demo/kub-demo/storage/pgdb"
)

// The contract both task stores keep is tested in package contract; here is what only the
// database store does.

func TestMain(m *testing.M) { os.Exit(pgtest.RunTests(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T, url string, opts tasks.Options) *Store {
	t.Helper()
	s, err := Open(pgdb.Config{URL: url, MaxConns: 4, Timeout: 10 * time.Second}, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func page(t *testing.T, s *Store, viewer string, offset, limit int) ([]tasks.Task, int) {
	t.Helper()
	parts, total, err := s.Page(t.Context(), viewer, offset, limit)
	if err != nil {
		t.Fatal(err)
	}
	var list []tasks.Task
	if err := json.Unmarshal([]byte("["+string(bytes.Join(parts, nil))+"]"), &list); err != nil {
		t.Fatal(err)
	}
	return list, total
}

// TestQuotaIsExactAcrossReplicas: 40 concurrent appends of one user through two stores, with
// a quota of 10: exactly 10 are stored.
func TestQuotaIsExactAcrossReplicas(t *testing.T) {
	url := pgtest.NewDatabase(t)
	opts := tasks.Options{MaxTasksPerUser: 10}
	a, b := open(t, url, opts), open(t, url, opts)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.Migrate(t.Context())
	var wg sync.WaitGroup
	results := make(chan error, 40)
	for i := range 40 {
		s := []*Store{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- s.Append(t.Context(), "alice", tasks.Task{Title: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	close(results)
	stored, refused := 0, 0
	for err := range results {
		switch {
		case err == nil:
			stored++
		case errors.Is(err, tasks.ErrQuota):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if got, total := page(t, a, "alice", 0, 100); stored != 10 || refused != 30 || len(got) != 10 || total != 10 {
		t.Fatalf("%d stored, %d refused, %d listed (total %d); want 10, 30, 10", stored, refused, len(got), total)
	}
}

// TestUnavailableIsUnavailable: with no database behind the URL, or before the schema is
// migrated, calls fail at once with ErrUnavailable (a 503), and readiness fails; once the
// database is there, WaitMigrated makes the store ready.
func TestUnavailableIsUnavailable(t *testing.T) {
	gone, err := Open(pgdb.Config{URL: pgtest.UnreachableURL(t), MaxConns: 2, Timeout: time.Second}, tasks.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	if err := gone.Append(t.Context(), "alice", tasks.Task{Title: "t"}); !errors.Is(err, tasks.ErrUnavailable) {
		t.Errorf("Append before any migration: %v, want ErrUnavailable", err)
	}
	start := time.Now()
	err = gone.Migrate(t.Context())
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Migrate with no server: %v after %s", err, time.Since(start))
	}
	if err := gone.Check(t.Context()); !errors.Is(err, tasks.ErrUnavailable) || strings.Contains(err.Error(), pgtest.UnreachablePassword) {
		t.Errorf("Check: %v, want ErrUnavailable and no password", err)
	}
	if _, _, err := gone.Page(t.Context(), "alice", 0, 10); !errors.Is(err, tasks.ErrUnavailable) {
		t.Errorf("Page: %v, want ErrUnavailable", err)
	}

	// A database that comes up after the service: not ready until it exists, then migrated
	// and ready without a restart.
	server := pgtest.Shared(t)
	name := fmt.Sprintf("late_%d", time.Now().UnixNano())
	s := open(t, server.URL(name), tasks.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	migrated := make(chan struct{})
	go func() { s.WaitMigrated(ctx, 50*time.Millisecond); close(migrated) }()
	if err := s.Check(t.Context()); !errors.Is(err, tasks.ErrUnavailable) {
		t.Fatalf("Check before the database exists: %v, want ErrUnavailable", err)
	}
	if err := server.CreateDatabase(name); err != nil {
		t.Fatal(err)
	}
	<-migrated
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("after WaitMigrated: %v", err)
	}
	if err := s.Append(t.Context(), "alice", tasks.Task{Title: "t"}); err != nil {
		t.Fatal(err)
	}
}

func TestBadURLsDoNotShowThePassword(t *testing.T) {
	for _, url := range []string{"postgres://user:secret-pw@host:notaport/db", "postgres://user:secret-pw@host/db?sslmode=bogus"} {
		_, err := Open(pgdb.Config{URL: url, MaxConns: 1, Timeout: time.Second}, tasks.Options{}, quiet)
		if err == nil || strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("Open(%q) = %v, want an error without the password", strings.ReplaceAll(url, "secret-pw", "…"), err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func record(title, owner string) string {
	r, _ := tasks.EncodeRecord(tasks.Task{Title: title}, owner)
	return string(r) + "TASK_SPLIT"
}

// TestImportAddsEachRecordOnce: importing a file again adds nothing; once the file has grown,
// only the new records; damaged records are skipped; the tasks keep their owners and file
// order, and tasks stored afterwards come after them.
func TestImportAddsEachRecordOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	writeFile(t, path, record("one", "")+record("two", "alice")+`{"title":"damaged`+"TASK_SPLIT"+record("three", "bob")+record("one", ""))
	s := open(t, pgtest.NewDatabase(t), tasks.Options{MaxTasksPerUser: 2})
	got, err := s.Import(t.Context(), path)
	if err != nil || got != (Imported{Read: 5, Added: 4, Skipped: 1}) {
		t.Fatalf("first import: %+v, %v", got, err)
	}
	if got, err := s.Import(t.Context(), path); err != nil || got != (Imported{Read: 5, Present: 4, Skipped: 1}) {
		t.Fatalf("the same file again: %+v, %v", got, err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(record("four", "alice") + record("five", "alice"))
	f.Close()
	if got, err := s.Import(t.Context(), path); err != nil || got != (Imported{Read: 7, Added: 2, Present: 4, Skipped: 1}) {
		t.Fatalf("the file grown: %+v, %v", got, err)
	}
	if err := s.Append(t.Context(), "alice", tasks.Task{Title: "after"}); !errors.Is(err, tasks.ErrQuota) {
		t.Errorf("alice has 3 tasks (imported past her quota of 2): Append = %v, want ErrQuota", err)
	}
	if err := s.Append(t.Context(), "carol", tasks.Task{Title: "after"}); err != nil {
		t.Fatal(err)
	}
	for viewer, want := range map[string]string{"alice": "[one two one four five]", "bob": "[one three one]", "carol": "[one one after]"} {
		list, total := page(t, s, viewer, 0, 100)
		var names []string
		for _, task := range list {
			names = append(names, task.Title)
		}
		if fmt.Sprint(names) != want || total != len(names) {
			t.Errorf("%s sees %v (total %d), want %s", viewer, names, total, want)
		}
	}
}

func TestImportRefusesWhatIsNoTasksFile(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), tasks.Options{})
	folder := t.TempDir()
	if _, err := s.Import(t.Context(), filepath.Join(folder, "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want not exist", err)
	}
	if _, err := os.Stat(filepath.Join(folder, "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("import created the missing file")
	}
	notTasks := filepath.Join(folder, "users.jsonl")
	writeFile(t, notTasks, `{"id":"x","email":"a@b.c"}`+"\n")
	if got, err := s.Import(t.Context(), notTasks); err == nil {
		t.Errorf("a file that is not a tasks file: imported %+v", got)
	}
	if list, _ := page(t, s, "", 0, 10); len(list) != 0 {
		t.Errorf("tasks stored from files that are not tasks files: %v", list)
	}
}

// TestOneUsersConcurrentAppendsShareCommits: 64 appends of one user at once are stored in
// fewer transactions than tasks (group commit), each task in a place of its own, 0 to 63,
// in stored order.
func TestOneUsersConcurrentAppendsShareCommits(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var mu sync.Mutex
	commits, records := 0, 0
	s := open(t, url, tasks.Options{OnCommit: func(n int, _, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			commits++
			records += n
		}
	}})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if err := s.Append(t.Context(), "alice", tasks.Task{Title: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n, distinct, lowest, highest int
	var inOrder bool
	err = conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT pos), min(pos), max(pos),
		bool_and(pos = rank - 1) FROM (SELECT pos, rank() OVER (ORDER BY id) FROM tasks WHERE owner = 'alice') t`).
		Scan(&n, &distinct, &lowest, &highest, &inOrder)
	if err != nil {
		t.Fatal(err)
	}
	if n != 64 || distinct != 64 || lowest != 0 || highest != 63 || !inOrder {
		t.Fatalf("%d tasks, %d places from %d to %d, in stored order: %v; want 64 tasks in places 0 to 63", n, distinct, lowest, highest, inOrder)
	}
	if records != 64 || commits >= 64 {
		t.Fatalf("%d tasks in %d commits: concurrent appends should share them", records, commits)
	}
	t.Logf("64 concurrent appends of one user: %d commits", commits)
}
