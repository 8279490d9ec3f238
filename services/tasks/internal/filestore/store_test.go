package filestore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

var ctx = context.Background()

func open(t *testing.T, folder string) *Store {
	t.Helper()
	s, err := Open(folder, slog.New(slog.NewTextHandler(io.Discard, nil)), tasks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func listAll(t *testing.T, s *Store) []tasks.Task {
	t.Helper()
	tasks, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

func TestFileIsInTheOriginalFormat(t *testing.T) {
	folder := filepath.Join(t.TempDir(), "not", "there", "yet")
	s := open(t, folder)
	for _, task := range []tasks.Task{{Title: "Buy milk", Text: "2 litres"}, {Title: "Call Bob", Text: ""}} {
		if err := s.Append(ctx, "", task); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(folder, "tasks.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"title":"Buy milk","text":"2 litres"}TASK_SPLIT{"title":"Call Bob","text":""}TASK_SPLIT`
	if string(raw) != want {
		t.Fatalf("tasks.txt =\n%s\nwant\n%s", raw, want)
	}
}

func TestFileWrittenByTheOriginalLoads(t *testing.T) {
	folder := t.TempDir()
	// As the Node service wrote it: JSON.stringify(task) + 'TASK_SPLIT', unescaped <>&, a
	// task without text, one with a number for a title, and unicode.
	legacy := `{"title":"Buy milk","text":"2 litres"}TASK_SPLIT{"title":"<b>&</b>"}TASK_SPLIT{"title":42,"text":"n"}TASK_SPLIT{"title":"Café ☕","text":"née"}TASK_SPLIT`
	os.WriteFile(filepath.Join(folder, "tasks.txt"), []byte(legacy), 0o644)
	got := listAll(t, open(t, folder))
	want := []tasks.Task{{Title: "Buy milk", Text: "2 litres"}, {Title: "<b>&</b>", Text: ""}, {Title: "42", Text: "n"}, {Title: "Café ☕", Text: "née"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("loaded %q, want %q", got, want)
	}
}

func TestDelimiterInsideATaskRoundTrips(t *testing.T) {
	folder := t.TempDir()
	s := open(t, folder)
	tricky := []tasks.Task{
		{Title: "TASK_SPLIT", Text: "before TASK_SPLIT after"},
		{Title: `\TASK_SPLIT`, Text: `"TASK_SPLITTASK_SPLIT"`},
		{Title: "TASK_SPLI", Text: "T"},
		{Title: "TASK_SPLITASK_SPLIT", Text: "overlapping: SPLIT ends with the next one's T"},
	}
	for _, task := range tricky {
		if err := s.Append(ctx, "", task); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(folder, "tasks.txt"))
	// The original's reader: split on the delimiter, drop the last piece.
	if pieces := bytes.Split(raw, tasks.Delimiter); len(pieces)-1 != len(tricky) {
		t.Fatalf("the original would split the file into %d records, want %d:\n%s", len(pieces)-1, len(tricky), raw)
	}
	got := listAll(t, open(t, folder))
	if fmt.Sprint(got) != fmt.Sprint(tricky) {
		t.Fatalf("read back %q, want %q", got, tricky)
	}
}

func TestTornLastRecordIsIgnoredAndTheNextAppendIsClean(t *testing.T) {
	folder := t.TempDir()
	path := filepath.Join(folder, "tasks.txt")
	os.WriteFile(path, []byte(`{"title":"whole","text":""}TASK_SPLIT{"title":"torn by a cra`), 0o644)
	s := open(t, folder)
	if got := listAll(t, s); len(got) != 1 || got[0].Title != "whole" {
		t.Fatalf("loaded %v, want only the whole record", got)
	}
	if err := s.Append(ctx, "", tasks.Task{Title: "after", Text: "crash"}); err != nil {
		t.Fatal(err)
	}
	got := listAll(t, open(t, folder))
	if len(got) != 2 || got[1] != (tasks.Task{Title: "after", Text: "crash"}) {
		t.Fatalf("after reopen: %v", got)
	}
}

func TestConcurrentAppendsKeepEveryTask(t *testing.T) {
	folder := t.TempDir()
	s := open(t, folder)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Append(ctx, "", tasks.Task{Title: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(listAll(t, s)); n != writers*each {
		t.Fatalf("in memory: %d tasks, want %d", n, writers*each)
	}
	reopened := listAll(t, open(t, folder))
	seen := map[string]bool{}
	for _, task := range reopened {
		seen[task.Title] = true
	}
	if len(reopened) != writers*each || len(seen) != writers*each {
		t.Fatalf("on disk: %d tasks, %d distinct, want %d", len(reopened), len(seen), writers*each)
	}
}

func TestTwoStoresOnOneFolderSeeEachOther(t *testing.T) {
	folder := t.TempDir()
	a, b := open(t, folder), open(t, folder)
	if err := a.Append(ctx, "", tasks.Task{Title: "from a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, "", tasks.Task{Title: "from b"}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		if got := listAll(t, s); len(got) != 2 || got[0].Title != "from a" || got[1].Title != "from b" {
			t.Errorf("store %s lists %v", name, got)
		}
	}
}

// TestPageIsWhatTheOriginalAnswered: the encoded tasks a list answer is cut from are the
// bytes the original's res.json (JSON.stringify) wrote for the same tasks (web.Marshal), for
// tasks written here and for records as the original could have written them.
func TestPageIsWhatTheOriginalAnswered(t *testing.T) {
	folder := t.TempDir()
	original := `{"title":"<b>Bold</b> & co","text":"ünïcødé \u2028"}TASK_SPLIT{"title":42,"text":null}TASK_SPLIT{"text":"no title"}TASK_SPLIT`
	if err := os.WriteFile(filepath.Join(folder, FileName), []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, folder)
	if err := s.Append(ctx, "", tasks.Task{Title: "TASK_SPLIT inside", Text: "a\"quote\" and \\ and \t"}); err != nil {
		t.Fatal(err)
	}
	all := listAll(t, s)
	if len(all) != 4 {
		t.Fatalf("%d tasks, want 4: %v", len(all), all)
	}
	for _, tt := range []struct{ offset, limit, from, to int }{
		{0, 100, 0, 4}, {0, 1, 0, 1}, {1, 2, 1, 3}, {3, 5, 3, 4}, {4, 1, 4, 4}, {9, 1, 4, 4}, {0, 0, 0, 0},
	} {
		parts, total, err := s.Page(ctx, "", tt.offset, tt.limit)
		got := bytes.Join(parts, nil)
		if err != nil || total != 4 {
			t.Fatalf("Page(%d, %d): total %d, %v", tt.offset, tt.limit, total, err)
		}
		want, _ := web.Marshal(all[tt.from:tt.to])
		if "["+string(got)+"]" != string(want) {
			t.Errorf("Page(%d, %d) = %s, want the inside of %s", tt.offset, tt.limit, got, want)
		}
	}
}
