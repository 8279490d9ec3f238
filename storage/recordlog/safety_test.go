package recordlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openErr opens path and returns the error, closing the Log if it opened.
func openErr(path string, opts Options) error {
	c := &collector{}
	if opts.Apply == nil {
		opts.Apply = c.apply
	}
	opts.Delimiter, opts.Log = delim, discard()
	l, err := Open(path, opts)
	if err == nil {
		l.Close()
	}
	return err
}

// TestFilesThatAreNotRecordFilesAreRefusedAndKept: whatever else sits at the path is refused
// at open with an error that says so, and not one byte of it changes.
func TestFilesThatAreNotRecordFilesAreRefusedAndKept(t *testing.T) {
	var array strings.Builder
	array.WriteString("[")
	for i := range 2000 {
		fmt.Fprintf(&array, `{"title":"task %d","text":"exported by hand"},`, i)
	}
	array.WriteString(`{"title":"last"}]`)
	for name, content := range map[string]string{
		"a JSON array of 2,000 tasks":   array.String(),
		"a pretty-printed JSON object":  "{\n  \"title\": \"a\"\n}\n",
		"a text file":                   strings.Repeat("some notes, not tasks\n", 4000),
		"records ending in non-records": `{"a":1}TASK_SPLIT` + "and then a text that is not a record\n",
		"only unreadable records":       `[1,2]TASK_SPLITnullTASK_SPLIT`,
		"binary":                        "\x00\x01\x02\xff\xfe" + strings.Repeat("\x00", 1000),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tasks.txt")
			os.WriteFile(path, []byte(content), 0o644)
			err := openErr(path, Options{})
			if err == nil || !strings.Contains(err.Error(), "not a record file") || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("Open = %v, want a refusal saying it is not a record file", err)
			}
			if raw, _ := os.ReadFile(path); string(raw) != content {
				t.Fatalf("the file changed: %d bytes, was %d", len(raw), len(content))
			}
		})
	}
}

// TestSymlinkToAnotherFile: a tasks.txt that is a symlink is followed; if it leads to a file
// that is not a record file, that file is left as it was.
func TestSymlinkToAnotherFile(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.md")
	content := strings.Repeat("# my notes\n", 7000) // 77 KB
	os.WriteFile(notes, []byte(content), 0o644)
	path := filepath.Join(dir, "tasks.txt")
	os.Symlink(notes, path)
	if err := openErr(path, Options{}); err == nil {
		t.Fatal("a symlink to a notes file was opened as a record file")
	}
	if raw, _ := os.ReadFile(notes); string(raw) != content {
		t.Fatalf("the file behind the symlink changed: %d bytes, was %d", len(raw), len(content))
	}

	// A symlink to a record file is used: appends land in the file it leads to.
	real := filepath.Join(dir, "real-tasks.txt")
	os.WriteFile(real, []byte(`{"a":1}TASK_SPLIT`), 0o644)
	os.Remove(path)
	os.Symlink(real, path)
	l, seen := open(t, path)
	if err := l.Append([]byte(`{"b":2}`), nil); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(real); string(raw) != `{"a":1}TASK_SPLIT{"b":2}TASK_SPLIT` || len(seen.snapshot()) != 2 {
		t.Fatalf("through the symlink: %q, %v", raw, seen.snapshot())
	}
}

func TestFIFOIsRefusedAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- openErr(path, Options{}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("Open(FIFO) = %v, want a refusal naming a named pipe", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open(FIFO) hangs")
	}
}

// TestOversizedRecordCostsOnlyItself: a record longer than the limit (a 17 MB line, say) is
// skipped with a warning naming its offset; the records around it load.
func TestOversizedRecordCostsOnlyItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.jsonl")
	huge := `{"huge":"` + strings.Repeat("x", 17<<20) + `"}`
	content := `{"a":1}` + "\n" + huge + "\n" + `{"b":2}` + "\n"
	os.WriteFile(path, []byte(content), 0o644)
	var logs bytes.Buffer
	c := &collector{}
	l, err := Open(path, Options{Delimiter: []byte("\n"), Apply: c.apply, MaxRecordBytes: 64 << 10,
		Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	if got := c.snapshot(); len(got) != 2 || got[0] != `{"a":1}` || got[1] != `{"b":2}` {
		t.Fatalf("loaded %d records, want a and b", len(got))
	}
	if !strings.Contains(logs.String(), `"offset":8`) || !strings.Contains(logs.String(), "longer than the limit") {
		t.Fatalf("no warning naming the offset:\n%.500s", logs.String())
	}
	if err := l.Append([]byte(`{"c":3}`), nil); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != content+`{"c":3}`+"\n" {
		t.Fatal("the records before the append changed")
	}
	if err := l.Append([]byte(`{"big":"`+strings.Repeat("y", 64<<10)+`"}`), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("appending a record over the limit: %v, want ErrTooLarge", err)
	}
}

// TestReplacedOrShrunkFileIsReadAgain: a file put in place of the open one (or cut short) is
// noticed at the next read, read from the start, and appended to.
func TestReplacedOrShrunkFileIsReadAgain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.txt")
	l, seen := open(t, path)
	reset := 0
	l.opts.Reset = func() { reset++; seen.mu.Lock(); seen.records = nil; seen.mu.Unlock() }
	for _, r := range []string{`{"a":1}`, `{"b":2}`} {
		l.Append([]byte(r), nil)
	}

	// Replaced, as a restore from a backup does it: a new file renamed over the old one.
	replacement := filepath.Join(dir, "restored")
	os.WriteFile(replacement, []byte(`{"x":1}TASK_SPLIT{"y":2}TASK_SPLIT{"z":3}TASK_SPLIT`), 0o644)
	os.Rename(replacement, path)
	if err := l.Check(); err != nil {
		t.Fatalf("Check after a replace: %v", err)
	}
	if got := seen.snapshot(); len(got) != 3 || got[0] != `{"x":1}` || reset != 1 {
		t.Fatalf("after the replace: %v (resets %d), want x, y, z", got, reset)
	}
	if err := l.Append([]byte(`{"w":4}`), nil); err != nil {
		t.Fatalf("append after the replace: %v", err)
	}

	// Shrunk: cut back to its first record by hand.
	os.Truncate(path, int64(len(`{"x":1}TASK_SPLIT`)))
	if err := l.Refresh(); err != nil {
		t.Fatalf("Refresh after a shrink: %v", err)
	}
	if got := seen.snapshot(); len(got) != 1 || got[0] != `{"x":1}` {
		t.Fatalf("after the shrink: %v, want only x", got)
	}
	if err := l.Append([]byte(`{"v":5}`), nil); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != `{"x":1}TASK_SPLIT{"v":5}TASK_SPLIT` {
		t.Fatalf("file = %q", raw)
	}
}

// TestForeignFilePutInPlaceIsNeverWritten: when what replaces the file is not a record file,
// reads and appends fail with ErrUnavailable (readiness says so) and it is left as it is;
// once a record file is back, everything works again by itself.
func TestForeignFilePutInPlaceIsNeverWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.txt")
	l, seen := open(t, path)
	l.opts.Reset = func() { seen.mu.Lock(); seen.records = nil; seen.mu.Unlock() }
	l.Append([]byte(`{"a":1}`), nil)

	foreign := `[{"title":"an export"}]`
	os.Remove(path)
	os.WriteFile(path, []byte(foreign), 0o644)
	if err := l.Check(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check = %v, want ErrUnavailable", err)
	}
	if err := l.Refresh(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Refresh = %v, want ErrUnavailable", err)
	}
	if err := l.Append([]byte(`{"b":2}`), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append = %v, want ErrUnavailable", err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != foreign {
		t.Fatalf("the foreign file changed to %q", raw)
	}
	if got := seen.snapshot(); len(got) != 0 {
		t.Fatalf("still serving the old file's records: %v", got)
	}

	os.WriteFile(path, []byte(`{"c":3}TASK_SPLIT`), 0o644) // fixed in place (same inode)
	if err := l.Check(); err != nil {
		t.Fatalf("Check once fixed: %v", err)
	}
	if err := l.Append([]byte(`{"d":4}`), nil); err != nil {
		t.Fatalf("Append once fixed: %v", err)
	}
	if got := seen.snapshot(); len(got) != 2 || got[0] != `{"c":3}` || got[1] != `{"d":4}` {
		t.Fatalf("after the fix: %v", got)
	}
}

// TestBytesAppendedByOthersThatAreNotARecordAreNotCut: only a torn record of ours is cut;
// text someone appended by hand stays, and appends wait until it is dealt with.
func TestBytesAppendedByOthersThatAreNotARecordAreNotCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	l, _ := open(t, path)
	l.Append([]byte(`{"a":1}`), nil)
	appendTo(t, path, "# a note someone added\n")
	before, _ := os.ReadFile(path)
	if err := l.Append([]byte(`{"b":2}`), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after foreign bytes: %v, want ErrUnavailable", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatalf("file changed from %q to %q", before, after)
	}
	if err := l.Check(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check: %v, want ErrUnavailable", err)
	}
}

func TestSizeLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	c := &collector{}
	l, err := Open(path, Options{Delimiter: delim, Apply: c.apply, Log: discard(), MaxBytes: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append([]byte(`{"a":1}`), nil); err != nil { // 17 bytes
		t.Fatal(err)
	}
	if err := l.Append([]byte(`{"b":"12345678"}`), nil); !errors.Is(err, ErrFull) { // 26 more: 43
		t.Fatalf("past the limit: %v, want ErrFull", err)
	}
	if err := l.Append([]byte(`{"c":3}`), nil); err != nil { // 34
		t.Fatalf("within the limit: %v", err)
	}
}

func TestTornTails(t *testing.T) {
	recognize := func(object []byte) bool { return bytes.HasPrefix(object, []byte(`{"title":`)) }
	l := &Log{opts: Options{Delimiter: delim, MaxRecordBytes: 100, Recognize: recognize}}
	for tail, want := range map[string]tailKind{
		``:                                     tailNone,
		`{`:                                    tailTorn,
		`{"title":"half wri`:                   tailTorn,
		`{"title":"a\`:                         tailTorn,
		`{"title":"a","text":"b"}`:             tailWhole,
		`{"title":"a"}TASK_SP`:                 tailWhole,
		`{"replicas":3}`:                       tailForeign, // whole, but not a record of this file
		`{"title":"a"}TASK_SPLAT`:              tailForeign,
		`{"title":"a"}x`:                       tailForeign,
		`[{"title":"a"}`:                       tailForeign,
		"{\n\"title\":":                        tailForeign,
		`{"title":` + strings.Repeat("1", 200): tailForeign,
		`text`:                                 tailForeign,
	} {
		if got, _ := l.classifyTail([]byte(tail)); got != want {
			t.Errorf("classifyTail(%.30q) = %v, want %v", tail, got, want)
		}
	}
}

// TestWholeRecordWithoutItsDelimiterIsKept: a record whose delimiter was cut (a crash
// mid-delimiter, an editor that drops the last newline) is completed at open and read; a
// small JSON file of someone else's, with no delimiter, is refused and left as it was.
func TestWholeRecordWithoutItsDelimiterIsKept(t *testing.T) {
	recognize := func(object []byte) bool { return bytes.HasPrefix(object, []byte(`{"n":`)) }
	for _, tt := range []struct{ content, want, last string }{
		{`{"n":1}TASK_SPLIT{"n":2}TASK_SP`, `{"n":1}TASK_SPLIT{"n":2}TASK_SPLIT`, `{"n":2}`},
		{`{"n":1}`, `{"n":1}TASK_SPLIT`, `{"n":1}`},
	} {
		path := filepath.Join(t.TempDir(), "tasks.txt")
		os.WriteFile(path, []byte(tt.content), 0o644)
		c := &collector{}
		l, err := Open(path, Options{Delimiter: delim, Apply: c.apply, Log: discard(), Recognize: recognize})
		if err != nil {
			t.Fatalf("Open(%q): %v", tt.content, err)
		}
		got := c.snapshot()
		l.Close()
		if raw, _ := os.ReadFile(path); string(raw) != tt.want || len(got) == 0 || got[len(got)-1] != tt.last {
			t.Fatalf("%q became %q, records %v; want %q with %s read", tt.content, raw, got, tt.want, tt.last)
		}
	}
	path := filepath.Join(t.TempDir(), "tasks.txt")
	config := `{"replicas":3,"owner":"ops","note":"keep this file"}`
	os.WriteFile(path, []byte(config), 0o644)
	if err := openErr(path, Options{Recognize: recognize}); err == nil {
		t.Fatal("a small JSON file of someone else's was opened as a record file")
	}
	if raw, _ := os.ReadFile(path); string(raw) != config {
		t.Fatalf("it changed to %q", raw)
	}
}

func appendTo(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(data)
}

// TestExistingNeverCreates: a reader's Open of a missing file fails with os.ErrNotExist and
// leaves no file and no folder behind.
func TestExistingNeverCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "tasks.txt")
	l, err := Open(path, Options{Delimiter: delim, Apply: func([]byte) error { return nil }, Log: discard(), Existing: true})
	if err == nil {
		l.Close()
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing file with Existing: %v, want os.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("its folder was created: %v", err)
	}
}
