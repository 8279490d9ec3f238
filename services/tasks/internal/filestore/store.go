// Package filestore keeps tasks in $TASKS_FOLDER/tasks.txt in the original service's format: each
// task a JSON object followed by the 10 bytes TASK_SPLIT, no newline. Files written by the
// original load here, and files written here load in the original. Each task records its
// owner's user id; a user sees their own tasks and those with no owner (the original's).
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

// FileName is the tasks file inside TASKS_FOLDER.
const FileName = "tasks.txt"

// Store is the tasks file and, in memory, every task in it, encoded as the API answers them,
// by owner.
type Store struct {
	file *recordlog.Log
	opts tasks.Options

	mu      sync.RWMutex
	seq     uint32           // tasks read so far: the next task's place
	all     *list            // every task, when Shared
	unowned *list            // tasks with no owner, when not Shared
	owners  map[string]*list // each owner's tasks, when not Shared
	usage   map[string]usage // each owner's tasks and bytes, for the quota
	// reserved are the appends that passed the quota and are not written yet, by owner and in
	// all: the quota and the small users' room count them (see Append).
	reserved      map[string]usage
	reservedBytes int64
	total         int64 // bytes of the records read, delimiters included
}

var _ tasks.Store = (*Store)(nil)

type usage struct {
	tasks int
	bytes int64
}

// Open opens (or creates, with its folder) folder/tasks.txt and loads it. It refuses a file
// that is not a tasks file, and never changes one (see recordlog).
func Open(folder string, log *slog.Logger, opts tasks.Options) (*Store, error) {
	s := &Store{opts: opts}
	s.reset()
	file, err := recordlog.Open(filepath.Join(folder, FileName), recordlog.Options{
		Delimiter: tasks.Delimiter, Apply: s.apply, Reset: s.reset, Log: log, OnCommit: opts.OnCommit,
		MaxRecordBytes: tasks.MaxRecordBytes, MaxBytes: opts.MaxBytes, Recognize: isTaskRecord,
	})
	if err != nil {
		return nil, err
	}
	s.file = file
	return s, nil
}

// isTaskRecord reports whether a JSON object is a task record: it has a title.
func isTaskRecord(object []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(object, &fields) != nil {
		return false
	}
	_, ok := fields["title"]
	return ok
}

// reset forgets every task: the file is read (again) from the start.
func (s *Store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq = 0
	s.all, s.unowned = &list{}, &list{}
	s.owners = make(map[string]*list)
	s.usage = make(map[string]usage)
	s.total = 0
	if s.reserved == nil { // appends in flight keep their reservations across a reload
		s.reserved = make(map[string]usage)
	}
}

// apply reads one record of the file.
func (s *Store) apply(encoded []byte) error {
	t, owner, err := tasks.DecodeRecord(encoded)
	if err != nil {
		return err
	}
	// As the original's res.json encoded it: the bytes clients see are the original's.
	answer, err := web.Marshal(t)
	if err != nil {
		return err
	}
	return s.add(owner, answer, len(encoded))
}

// add keeps a task, encoded as answered, as owner's; recordBytes is its size in the file.
func (s *Store) add(owner string, answer []byte, recordBytes int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq == math.MaxUint32 {
		return errors.New("more tasks than a store can hold")
	}
	seq := s.seq
	s.seq++
	u := s.usage[owner]
	s.usage[owner] = usage{tasks: u.tasks + 1, bytes: u.bytes + int64(recordBytes)}
	s.total += int64(recordBytes + len(tasks.Delimiter))
	switch {
	case s.opts.Shared:
		s.all.add(seq, answer)
	case owner == "":
		s.unowned.add(seq, answer)
	default:
		l := s.owners[owner]
		if l == nil {
			l = &list{}
			s.owners[owner] = l
		}
		l.add(seq, answer)
	}
	return nil
}

// Append stores t as owner's and returns once it is on disk. Concurrent appends share one
// fsync. Errors: tasks.ErrTooLarge, tasks.ErrQuota, tasks.ErrFull, tasks.ErrUnavailable,
// or the disk's.
//
// The quota is exact, for concurrent appends and for replicas sharing the file: it is checked
// under the file's lock, once the other processes' records are read, against what is stored
// and what the appends of this process that passed it before reserved.
//
// The last smallUsersRoom of the store's size limit is kept for users whose tasks take less
// than smallUser bytes: when many users fill the store as fast as they can, the others can
// still store what the course's flow stores.
func (s *Store) Append(_ context.Context, owner string, t tasks.Task) error {
	encoded, answer, err := tasks.Encode(t, owner)
	if err != nil {
		return err
	}
	if err := s.file.Refresh(); err != nil {
		return err
	}
	size := int64(len(encoded))
	if err := s.admit(owner, size, false); err != nil { // at once, without the file's lock
		return err
	}
	reserved := false
	check := func() error {
		if err := s.admit(owner, size, true); err != nil {
			return err
		}
		reserved = true
		return nil
	}
	// Once written, the task is kept as it is already encoded, not read back from the record.
	err = s.file.AppendReserved(encoded, check, func() {
		s.release(owner, size)
		reserved = false
		s.add(owner, answer, len(encoded))
	})
	if reserved {
		s.release(owner, size)
	}
	return err
}

// smallUser and smallUsersRoom: see Append.
const (
	smallUser      = tasks.MaxRecordBytes
	smallUsersRoom = 8 // the last 1/8 of MaxBytes
)

// admit says whether owner may store a record of size more, counting what is stored and
// reserved, and reserves it when reserve is set.
func (s *Store) admit(owner string, size int64, reserve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, r := s.usage[owner], s.reserved[owner]
	if err := s.opts.CheckQuota(int64(u.tasks+r.tasks), u.bytes+r.bytes, size); err != nil {
		return err
	}
	if limit := s.opts.MaxBytes; limit > 0 && u.bytes+r.bytes+size > smallUser &&
		s.total+s.reservedBytes+size+int64(len(tasks.Delimiter)) > limit-limit/smallUsersRoom {
		return fmt.Errorf("%w (%d bytes; the last %d are kept for users with under %d bytes of tasks)",
			tasks.ErrFull, limit, limit/smallUsersRoom, smallUser)
	}
	if reserve {
		s.reserved[owner] = usage{tasks: r.tasks + 1, bytes: r.bytes + size}
		s.reservedBytes += size + int64(len(tasks.Delimiter))
	}
	return nil
}

// release gives back a reservation of admit.
func (s *Store) release(owner string, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.reserved[owner]; r.tasks <= 1 {
		delete(s.reserved, owner)
	} else {
		s.reserved[owner] = usage{tasks: r.tasks - 1, bytes: r.bytes - size}
	}
	s.reservedBytes -= size + int64(len(tasks.Delimiter))
}

// Page returns the tasks viewer may see, offset to offset+limit (fewer at the end), as slices
// that together are the elements of a JSON array ({"title":…,"text":…},{…} with no
// brackets), in stored order, and how many tasks viewer may see in all. It includes tasks
// other processes appended: only what was appended since the last call is read. The slices
// are shared: callers must not change them.
func (s *Store) Page(_ context.Context, viewer string, offset, limit int) (parts [][]byte, total int, err error) {
	if err := s.file.Refresh(); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.opts.Shared {
		parts, total = page(s.all, nil, offset, limit)
	} else {
		parts, total = page(s.unowned, s.owners[viewer], offset, limit)
	}
	return parts, total, nil
}

// List returns every task viewer may see, in stored order.
func (s *Store) List(viewer string) ([]tasks.Task, error) {
	parts, total, err := s.Page(context.Background(), viewer, 0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteByte('[')
	for _, p := range parts {
		b.Write(p)
	}
	b.WriteByte(']')
	tasks := make([]tasks.Task, 0, total)
	if err := json.Unmarshal([]byte(b.String()), &tasks); err != nil {
		return nil, fmt.Errorf("decode the tasks in memory: %w", err)
	}
	return tasks, nil
}

// Count is how many tasks the store holds.
func (s *Store) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int(s.seq)
}

// Check reports whether tasks.txt can be used now (readiness).
func (s *Store) Check() error { return s.file.Check() }

// Close closes the file.
func (s *Store) Close() error { return s.file.Close() }
