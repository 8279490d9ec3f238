package store

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzRecordRoundTrip: any title and text (as valid UTF-8, which is all a request can carry)
// encode to one record without the delimiter in it, and decode back identical.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("Buy milk", "2 litres", "")
	f.Add("TASK_SPLIT", "TASK_SPLITTASK_SPLIT", "TASK_SPLIT")
	f.Add(`\TASK_SPLIT`, `"\u0054ASK_SPLIT"`, "uid-1")
	f.Add("<b>&amp;</b>", "\x00\n\t\u2028", "OWNER2")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, title, text, owner string) {
		if !utf8.ValidString(title) || !utf8.ValidString(text) || !utf8.ValidString(owner) {
			return // the HTTP layer refuses invalid UTF-8 before it gets here
		}
		task := Task{Title: title, Text: text}
		record, err := EncodeRecord(task, owner)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(record, Delimiter) {
			t.Fatalf("record %q contains the delimiter", record)
		}
		got, gotOwner, err := DecodeRecord(record)
		if err != nil || got != task || gotOwner != owner {
			t.Fatalf("DecodeRecord(%q) = %q, %q, %v; want %q, %q", record, got, gotOwner, err, task, owner)
		}
	})
}

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
		s, err := Open(folder, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
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
		appended := Task{Title: "after", Text: "fuzz"}
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
