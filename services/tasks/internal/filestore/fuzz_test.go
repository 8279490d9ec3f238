package filestore

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

// FuzzOpenAnyFile: whatever bytes tasks.txt holds, the store either refuses it, leaving every
// byte as it was, or opens it without panicking, and then a task appended afterwards is read
// back, after every task that loaded before it.
func FuzzOpenAnyFile(f *testing.F) {
	f.Add([]byte(`{"title":"a","text":"b"}TASK_SPLIT`))
	f.Add([]byte(`{"title":"a","text":"b"}TASK_SPLIT{"title":"torn`))
	f.Add([]byte(`TASK_SPLITTASK_SPLIT[]TASK_SPLITnullTASK_SPLIT{"title":1}TASK_SPLIT`))
	f.Add([]byte("\xff\xfe{\"title\":\"\xff\"}TASK_SPLIT"))
	f.Add([]byte(`[{"title":"a JSON export"}]`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, content []byte) {
		folder := t.TempDir()
		path := filepath.Join(folder, FileName)
		os.WriteFile(path, content, 0o644)
		s, err := Open(folder, slog.New(slog.NewTextHandler(io.Discard, nil)), tasks.Options{})
		if err != nil {
			if raw, _ := os.ReadFile(path); !bytes.Equal(raw, content) {
				t.Fatalf("refused %q but changed it to %q", content, raw)
			}
			return
		}
		before, err := s.List("")
		if err != nil {
			t.Fatal(err)
		}
		appended := tasks.Task{Title: "after", Text: "fuzz"}
		if err := s.Append(ctx, "", appended); err != nil {
			t.Fatal(err)
		}
		s.Close()
		after := listAll(t, open(t, folder))
		if len(after) != len(before)+1 || after[len(after)-1] != appended {
			t.Fatalf("before: %q\nafter: %q", before, after)
		}
		for i := range before {
			if after[i] != before[i] {
				t.Fatalf("task %d changed from %q to %q", i, before[i], after[i])
			}
		}
	})
}
