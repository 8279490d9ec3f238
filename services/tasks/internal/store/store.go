// Package store keeps tasks in $TASKS_FOLDER/tasks.txt in the original service's format: each
// task a JSON object followed by the 10 bytes TASK_SPLIT, no newline. Files written by the
// original load here, and files written here load in the original.
package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/platform/recordlog"
)

// FileName is the tasks file inside TASKS_FOLDER.
const FileName = "tasks.txt"

// Delimiter ends every record.
var Delimiter = []byte("TASK_SPLIT")

// escapedDelimiter is Delimiter with its first letter as a JSON \u escape: the same string
// once parsed, but no longer the delimiter's bytes.
var escapedDelimiter = []byte(`\u0054ASK_SPLIT`)

// Task is one stored task.
type Task struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// EncodeRecord returns t as one record: compact JSON in which the bytes TASK_SPLIT never
// appear, even when the title or text contains them. JSON can only hold those letters inside
// a string, where an escaped first letter keeps the value and hides the delimiter.
func EncodeRecord(t Task) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable, as the original wrote them
	if err := enc.Encode(t); err != nil {
		return nil, err
	}
	record := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// Occurrences can overlap ("TASK_SPLITASK_SPLIT": SPLIT ends with the T that starts the
	// next one), and one pass skips the second, so repeat until none is left. Each pass
	// removes at least one and creates none: the escape holds no T.
	for bytes.Contains(record, Delimiter) {
		record = bytes.ReplaceAll(record, Delimiter, escapedDelimiter)
	}
	return record, nil
}

// DecodeRecord reads one record. It is lenient with what the original could have written:
// a missing title or text is empty, and a non-string value is kept as its JSON text.
func DecodeRecord(record []byte) (Task, error) {
	var fields struct {
		Title json.RawMessage `json:"title"`
		Text  json.RawMessage `json:"text"`
	}
	if err := json.Unmarshal(record, &fields); err != nil {
		return Task{}, err
	}
	return Task{Title: stringValue(fields.Title), Text: stringValue(fields.Text)}, nil
}

func stringValue(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Store is the tasks file and, in memory, every task in it, in stored order.
//
// Tasks are kept as the JSON the API answers with, encoded once when a record is read or
// written: a list or a page is then a slice of one buffer, copied out with no encoding per
// request, and the buffer holds no pointers for the garbage collector to scan (which keeps
// pauses flat at a million tasks).
type Store struct {
	file *recordlog.Log

	mu sync.RWMutex
	// encoded holds every task as json.Marshal writes it, each followed by a comma:
	// {"title":…,"text":…},{"title":…,"text":…},
	encoded []byte
	// ends[i] is the offset in encoded just past task i's comma.
	ends []int
}

// Open opens (or creates, with its folder) folder/tasks.txt and loads it. onCommit, when
// not nil, is told of every batch written (see recordlog.Options).
func Open(folder string, log *slog.Logger, onCommit func(records int, write, sync time.Duration, err error)) (*Store, error) {
	s := &Store{}
	path := filepath.Join(folder, FileName)
	if info, err := os.Stat(path); err == nil {
		// The tasks encoded take about as many bytes as the file (each record's TASK_SPLIT
		// becomes a comma): one allocation instead of doubling up to it, which at a million
		// tasks left a peak of twice the memory.
		s.encoded = make([]byte, 0, info.Size())
	}
	file, err := recordlog.Open(path, recordlog.Options{
		Delimiter: Delimiter, Apply: s.apply, Log: log, OnCommit: onCommit,
	})
	if err != nil {
		return nil, err
	}
	s.file = file
	return s, nil
}

func (s *Store) apply(record []byte) error {
	t, err := DecodeRecord(record)
	if err != nil {
		return err
	}
	// json.Marshal, as the list answer was always encoded: the bytes clients see stay the same.
	encoded, err := json.Marshal(t)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.encoded = append(append(s.encoded, encoded...), ',')
	s.ends = append(s.ends, len(s.encoded))
	return nil
}

// Append stores t and returns once it is on disk. Concurrent appends share one fsync.
func (s *Store) Append(t Task) error {
	record, err := EncodeRecord(t)
	if err != nil {
		return fmt.Errorf("encode task: %w", err)
	}
	return s.file.Append(record, nil)
}

// Page returns tasks offset to offset+limit (fewer at the end of the list) as the elements
// of a JSON array, {"title":…,"text":…},{…} with no brackets, in stored order, and how many
// tasks there are in all. It includes tasks other processes appended: only what was appended
// since the last call is read. The slice is shared: callers must not change it.
func (s *Store) Page(offset, limit int) (tasks []byte, total int, err error) {
	if err := s.file.Refresh(); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	total = len(s.ends)
	start := min(max(offset, 0), total)
	end := start + min(max(limit, 0), total-start)
	if start == end {
		return nil, total, nil
	}
	from := 0
	if start > 0 {
		from = s.ends[start-1]
	}
	to := s.ends[end-1] - 1 // without the last comma
	// Appends only ever write past len(s.encoded), so this slice never changes under a reader.
	return s.encoded[from:to:to], total, nil
}

// List returns every task in stored order, including those other processes appended.
func (s *Store) List() ([]Task, error) {
	encoded, total, err := s.Page(0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	tasks := make([]Task, 0, total)
	if err := json.Unmarshal(append(append([]byte{'['}, encoded...), ']'), &tasks); err != nil {
		return nil, fmt.Errorf("decode the tasks in memory: %w", err)
	}
	return tasks, nil
}

// Count is how many tasks the store holds.
func (s *Store) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ends)
}

// Close closes the file.
func (s *Store) Close() error { return s.file.Close() }
