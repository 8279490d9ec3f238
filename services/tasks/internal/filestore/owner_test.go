package filestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

func openWith(t *testing.T, folder string, opts tasks.Options) *Store {
	t.Helper()
	s, err := Open(folder, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func titles(t *testing.T, s *Store, viewer string) []string {
	t.Helper()
	list, err := s.List(viewer)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range list {
		out = append(out, task.Title)
	}
	return out
}

// TestEachUserSeesTheirOwnAndTheOriginalsTasks: Bob does not see Alice's tasks; both see the
// tasks the original service wrote (no owner), in stored order; the file keeps the owner in
// a field the original's reader passes through.
func TestEachUserSeesTheirOwnAndTheOriginalsTasks(t *testing.T) {
	folder := t.TempDir()
	os.WriteFile(filepath.Join(folder, FileName), []byte(`{"title":"from the original","text":""}TASK_SPLIT`), 0o644)
	s := openWith(t, folder, tasks.Options{})
	s.Append(ctx, "alice", tasks.Task{Title: "bank PIN 1234"})
	s.Append(ctx, "bob", tasks.Task{Title: "bob's"})
	s.Append(ctx, "alice", tasks.Task{Title: "alice's second"})

	for viewer, want := range map[string]string{
		"alice":   "[from the original bank PIN 1234 alice's second]",
		"bob":     "[from the original bob's]",
		"mallory": "[from the original]",
	} {
		if got := fmt.Sprint(titles(t, s, viewer)); got != want {
			t.Errorf("%s sees %s, want %s", viewer, got, want)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(folder, FileName))
	if !strings.Contains(string(raw), `{"title":"bank PIN 1234","text":"","owner":"alice"}TASK_SPLIT`) {
		t.Fatalf("tasks.txt does not record the owner: %s", raw)
	}
	s.Close()
	// Read again from the file: the same views.
	again := openWith(t, folder, tasks.Options{})
	if got := fmt.Sprint(titles(t, again, "bob")); got != "[from the original bob's]" {
		t.Fatalf("after a restart bob sees %s", got)
	}
}

func TestSharedModeIsTheCoursesOneList(t *testing.T) {
	folder := t.TempDir()
	s := openWith(t, folder, tasks.Options{})
	s.Append(ctx, "alice", tasks.Task{Title: "a"})
	s.Append(ctx, "bob", tasks.Task{Title: "b"})
	s.Close()
	shared := openWith(t, folder, tasks.Options{Shared: true})
	for _, viewer := range []string{"alice", "bob", "anyone"} {
		if got := fmt.Sprint(titles(t, shared, viewer)); got != "[a b]" {
			t.Errorf("shared: %s sees %s, want [a b]", viewer, got)
		}
	}
}

func TestQuotasAndRecordSize(t *testing.T) {
	s := openWith(t, t.TempDir(), tasks.Options{MaxTasksPerUser: 3, MaxBytesPerUser: 200})
	for i := range 3 {
		if err := s.Append(ctx, "alice", tasks.Task{Title: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(ctx, "alice", tasks.Task{Title: "fourth"}); !errors.Is(err, tasks.ErrQuota) {
		t.Fatalf("a fourth task: %v, want tasks.ErrQuota", err)
	}
	if err := s.Append(ctx, "bob", tasks.Task{Title: "bob", Text: strings.Repeat("x", 150)}); err != nil {
		t.Fatalf("bob's first: %v", err)
	}
	if err := s.Append(ctx, "bob", tasks.Task{Title: "bob", Text: strings.Repeat("x", 50)}); !errors.Is(err, tasks.ErrQuota) {
		t.Fatalf("past bob's bytes: %v, want tasks.ErrQuota", err)
	}
	// 3,000 control characters are 3,000 runes but 18,000 bytes once stored.
	if err := s.Append(ctx, "carol", tasks.Task{Title: "t", Text: strings.Repeat("\x01", 3000)}); !errors.Is(err, tasks.ErrTooLarge) {
		t.Fatalf("a task of 18 KB stored: %v, want tasks.ErrTooLarge", err)
	}
}

func TestStoreSizeLimit(t *testing.T) {
	s := openWith(t, t.TempDir(), tasks.Options{MaxBytes: 1000})
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		err = s.Append(ctx, "u", tasks.Task{Title: "a task of some length", Text: "0123456789"})
	}
	if !errors.Is(err, tasks.ErrFull) || n < 10 {
		t.Fatalf("after %d tasks: %v, want tasks.ErrFull after about 15", n, err)
	}
}

// TestPagesOfMergedListsAreTheMergeInStoredOrder compares every page of a user's view (their
// tasks merged with the unowned ones, across many chunks) with the merge done the slow way.
func TestPagesOfMergedListsAreTheMergeInStoredOrder(t *testing.T) {
	folder := t.TempDir()
	var legacy bytes.Buffer
	var want []tasks.Task
	rng := rand.New(rand.NewPCG(1, 2))
	s := openWith(t, folder, tasks.Options{})
	for i := range 3000 {
		task := tasks.Task{Title: fmt.Sprint(i), Text: strings.Repeat("x", rng.IntN(900))}
		switch rng.IntN(3) {
		case 0:
			record, _ := tasks.EncodeRecord(task, "")
			legacy.Write(append(record, tasks.Delimiter...))
			want = append(want, task)
		case 1:
			record, _ := tasks.EncodeRecord(task, "viewer")
			legacy.Write(append(record, tasks.Delimiter...))
			want = append(want, task)
		default:
			record, _ := tasks.EncodeRecord(task, "someone else")
			legacy.Write(append(record, tasks.Delimiter...))
		}
	}
	s.Close()
	os.WriteFile(filepath.Join(folder, FileName), legacy.Bytes(), 0o644)
	s = openWith(t, folder, tasks.Options{})
	for _, p := range []struct{ offset, limit int }{{0, 5000}, {0, 1}, {1, 50}, {777, 50}, {len(want) - 3, 50}, {len(want), 5}, {400, 1000}} {
		parts, total, err := s.Page(ctx, "viewer", p.offset, p.limit)
		if err != nil || total != len(want) {
			t.Fatalf("Page(%d, %d): total %d (want %d), %v", p.offset, p.limit, total, len(want), err)
		}
		var got []tasks.Task
		if err := json.Unmarshal([]byte("["+string(bytes.Join(parts, nil))+"]"), &got); err != nil {
			t.Fatalf("Page(%d, %d) is not a JSON array's inside: %v", p.offset, p.limit, err)
		}
		end := min(p.offset+p.limit, len(want))
		if fmt.Sprint(got) != fmt.Sprint(want[min(p.offset, end):end]) {
			t.Fatalf("Page(%d, %d): %d tasks, not the %d expected in order", p.offset, p.limit, len(got), end-p.offset)
		}
	}
}

// TestQuotaIsExactUnderConcurrentAppends: 64 appends of one user at once, into one store and
// into two stores on one folder (two replicas), store exactly the quota.
func TestQuotaIsExactUnderConcurrentAppends(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		folder := t.TempDir()
		var stores []*Store
		for range replicas {
			stores = append(stores, openWith(t, folder, tasks.Options{MaxTasksPerUser: 20}))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		for i := range 64 {
			wg.Go(func() {
				err := stores[i%replicas].Append(ctx, "alice", tasks.Task{Title: fmt.Sprint(i)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					outcomes["stored"]++
				case errors.Is(err, tasks.ErrQuota):
					outcomes["quota"]++
				default:
					outcomes[err.Error()]++
				}
			})
		}
		wg.Wait()
		if outcomes["stored"] != 20 || outcomes["quota"] != 44 {
			t.Errorf("%d replicas, 64 appends at once with a quota of 20: %v, want 20 stored and 44 refused", replicas, outcomes)
		}
	}
}

// TestSmallUsersRoom: users who fill the store stop short of its last eighth, which stays
// for users with little stored.
func TestSmallUsersRoom(t *testing.T) {
	const limit = 200 << 10
	s := openWith(t, t.TempDir(), tasks.Options{MaxBytes: limit})
	big := tasks.Task{Title: "big", Text: strings.Repeat("x", 15<<10)}
	var err error
	for i := 0; err == nil; i++ {
		err = s.Append(ctx, fmt.Sprintf("filler-%d", i%3), big)
	}
	if !errors.Is(err, tasks.ErrFull) {
		t.Fatalf("filling: %v, want tasks.ErrFull", err)
	}
	if s.total > limit-limit/smallUsersRoom {
		t.Fatalf("the fillers took %d bytes, past %d", s.total, limit-limit/smallUsersRoom)
	}
	for i := range 10 {
		if err := s.Append(ctx, fmt.Sprintf("newcomer-%d", i), tasks.Task{Title: "a 1 KB task", Text: strings.Repeat("y", 1<<10)}); err != nil {
			t.Fatalf("newcomer %d with the fillers stopped: %v", i, err)
		}
	}
}
