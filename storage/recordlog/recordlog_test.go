package recordlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var delim = []byte("TASK_SPLIT")

// collector is an apply function that keeps what it was handed.
type collector struct {
	mu      sync.Mutex
	records []string
}

func (c *collector) apply(record []byte) error {
	if !bytes.HasPrefix(record, []byte("{")) || !bytes.HasSuffix(record, []byte("}")) {
		return fmt.Errorf("not a record: %q", record)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, string(record))
	return nil
}

func (c *collector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.records...)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, path string) (*Log, *collector) {
	t.Helper()
	c := &collector{}
	l, err := Open(path, Options{Delimiter: delim, Apply: c.apply, Log: discard()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, c
}

func TestAppendedRecordsReadBackAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "folder", "tasks.txt")
	l, seen := open(t, path)
	for _, r := range []string{`{"a":1}`, `{"b":2}`} {
		if err := l.Append([]byte(r), nil); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if got := seen.snapshot(); len(got) != 2 {
		t.Fatalf("apply saw %v, want both records", got)
	}
	l.Close()

	raw, _ := os.ReadFile(path)
	if want := `{"a":1}TASK_SPLIT{"b":2}TASK_SPLIT`; string(raw) != want {
		t.Fatalf("file = %q, want %q", raw, want)
	}
	_, reread := open(t, path)
	if got := reread.snapshot(); len(got) != 2 || got[0] != `{"a":1}` || got[1] != `{"b":2}` {
		t.Fatalf("reopened: %v", got)
	}
}

func TestTornTailIsIgnoredThenCutBeforeTheNextAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	os.WriteFile(path, []byte(`{"a":1}TASK_SPLIT{"b":"half wri`), 0o644)
	l, seen := open(t, path)
	if got := seen.snapshot(); len(got) != 1 {
		t.Fatalf("open saw %v, want only the complete record", got)
	}
	if err := l.Append([]byte(`{"c":3}`), nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if want := `{"a":1}TASK_SPLIT{"c":3}TASK_SPLIT`; string(raw) != want {
		t.Fatalf("file = %q, want %q", raw, want)
	}
}

func TestUnreadableRecordIsSkippedNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	os.WriteFile(path, []byte(`{"a":1}TASK_SPLITgarbageTASK_SPLIT{"b":2}TASK_SPLIT`), 0o644)
	_, seen := open(t, path)
	if got := seen.snapshot(); len(got) != 2 {
		t.Fatalf("open saw %v, want the two readable records", got)
	}
}

func TestRecordContainingTheDelimiterIsRefused(t *testing.T) {
	l, _ := open(t, filepath.Join(t.TempDir(), "tasks.txt"))
	if err := l.Append([]byte(`{"x":"TASK_SPLIT"}`), nil); err == nil {
		t.Fatal("Append accepted a record that would split in two")
	}
}

func TestFailingCheckCancelsOnlyItsAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.jsonl")
	l, seen := open(t, path)
	exists := errors.New("exists")
	if err := l.Append([]byte(`{"n":1}`), func() error { return exists }); !errors.Is(err, exists) {
		t.Fatalf("Append = %v, want the check's error", err)
	}
	if err := l.Append([]byte(`{"n":2}`), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := seen.snapshot(); len(got) != 1 || got[0] != `{"n":2}` {
		t.Fatalf("records = %v", got)
	}
}

func TestConcurrentAppendsLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	l, seen := open(t, path)
	const writers, each = 40, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.Append(fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i), nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := len(seen.snapshot()); got != writers*each {
		t.Fatalf("apply saw %d records, want %d", got, writers*each)
	}
	assertWellFormed(t, path, writers*each)
}

// assertWellFormed checks the file holds exactly want records, each a whole one.
func assertWellFormed(t *testing.T, path string, want int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(raw, delim) {
		t.Fatalf("file does not end with the delimiter")
	}
	pieces := bytes.Split(raw, delim)
	pieces = pieces[:len(pieces)-1]
	if len(pieces) != want {
		t.Fatalf("file holds %d records, want %d", len(pieces), want)
	}
	for i, p := range pieces {
		if bytes.Count(p, []byte("{")) != 1 || !bytes.HasPrefix(p, []byte("{")) || !bytes.HasSuffix(p, []byte("}")) {
			t.Fatalf("record %d is interleaved or torn: %q", i, p)
		}
	}
}

// TestTwoProcessesShareOneFile runs this test binary again as a second writer: the flock
// must keep the two processes' records whole, and each must see the other's.
func TestTwoProcessesShareOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.txt")
	const each = 300
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "RECORDLOG_CHILD_FILE="+path, "RECORDLOG_CHILD_COUNT="+strconv.Itoa(each))
	var childOut bytes.Buffer
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	l, seen := open(t, path)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each / 10 {
				if err := l.Append(fmt.Appendf(nil, `{"parent":%d,"i":%d}`, w, i), nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := child.Wait(); err != nil {
		t.Fatalf("child writer: %v\n%s", err, childOut.String())
	}
	assertWellFormed(t, path, 2*each)
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got := len(seen.snapshot()); got != 2*each {
		t.Fatalf("after Refresh the parent knows %d records, want %d (its own and the child's)", got, 2*each)
	}
}

// TestMain turns this test binary into the second writer of TestTwoProcessesShareOneFile
// when it is started with RECORDLOG_CHILD_FILE set.
func TestMain(m *testing.M) {
	if path := os.Getenv("RECORDLOG_CHILD_FILE"); path != "" {
		count, _ := strconv.Atoi(os.Getenv("RECORDLOG_CHILD_COUNT"))
		if err := childWriter(path, count); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func childWriter(path string, count int) error {
	l, err := Open(path, Options{Delimiter: delim, Apply: func([]byte) error { return nil }, Log: discard()})
	if err != nil {
		return err
	}
	defer l.Close()
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range count / 10 {
				errs <- l.Append(fmt.Appendf(nil, `{"child":%d,"i":%d}`, w, i), nil)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestMaxBytesCountsTheRecordsKept: a record skipped as too long does not count against
// MaxBytes (appends go on), and a file whose records hold more than MaxBytes is refused at
// open, with a message that says why.
func TestMaxBytesCountsTheRecordsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records")
	junk := bytes.Repeat([]byte("j"), 4096)
	os.WriteFile(path, append(append([]byte("{a}"), delim...), append(junk, delim...)...), 0o644)
	c := &collector{}
	l, err := Open(path, Options{Delimiter: delim, Apply: c.apply, Log: discard(), MaxRecordBytes: 1024, MaxBytes: 200})
	if err != nil {
		t.Fatalf("a file of 4 KiB whose one readable record takes 13 bytes, limit 200: %v", err)
	}
	for i := range 5 {
		if err := l.Append([]byte(fmt.Sprintf("{record %d}", i)), nil); err != nil {
			t.Fatalf("append %d past a skipped record larger than the limit: %v", i, err)
		}
	}
	l.Close()

	if _, err = Open(path, Options{Delimiter: delim, Apply: (&collector{}).apply, Log: discard(), MaxRecordBytes: 1024, MaxBytes: 50}); err == nil ||
		!strings.Contains(err.Error(), "holds more than the limit of 50 bytes") {
		t.Fatalf("a file holding more records than the limit: %v, want it refused", err)
	}
}
