// Package recordlog keeps an append-only file of records, each followed by a delimiter,
// safely shared by goroutines and by processes (replicas on one volume):
//
//   - an append is acknowledged only once it is on disk (write, then fsync);
//   - concurrent appends share one write and one fsync (group commit);
//   - appends hold an exclusive flock, so records of two processes never interleave;
//   - a record torn by a crash (bytes after the last delimiter that are the start of a record
//     of ours) is ignored when read, and cut off before the next append, so the file stays
//     loadable by any reader that splits on the delimiter;
//   - nothing else is ever cut or rewritten: a file that is not a record file (no record in it
//     reads, or it ends in bytes that are not a torn record) is refused at open, and if one
//     appears in its place while running, appends and reads fail until it is fixed;
//   - a failed write or fsync is cut back, leaving no partial record;
//   - a record that cannot be read (damaged, or longer than MaxRecordBytes) costs that record
//     only, with a warning naming its offset;
//   - readers catch up incrementally: only bytes added since the last read are parsed;
//   - a file replaced, removed or shrunk under the running process is noticed (at the next
//     read or write, and at most a second later by Check) and read again from the start;
//   - the file is open for writing only while a batch is written, so a folder that turns
//     read-only (or a full disk) fails those appends with an error, and reads go on.
package recordlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxBatchRecords bounds how many appends share one write and fsync.
const maxBatchRecords = 512

// checkEvery is how often the file's path is looked at again, to notice a file put in its
// place (a replaced file, a retargeted symlink): at most once per checkEvery, at a read.
const checkEvery = time.Second

var (
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("recordlog: closed")
	// ErrOverLimit is returned by Open for a file that holds more than MaxBytes of records.
	ErrOverLimit = errors.New("holds more than the limit")
	// ErrFull is returned by Append when the record would take the file past MaxBytes.
	ErrFull = errors.New("recordlog: the file is at its size limit")
	// ErrTooLarge is returned by Append for a record over MaxRecordBytes.
	ErrTooLarge = errors.New("recordlog: record over the size limit")
	// ErrUnavailable wraps why the file cannot be used now (replaced by one that is not a
	// record file, made unreadable…). It clears once the file can be read again.
	ErrUnavailable = errors.New("recordlog: the file cannot be used now")
)

// Options configure a Log.
type Options struct {
	// Delimiter ends every record; records must not contain it.
	Delimiter []byte
	// Apply is handed every record, in file order, once. An error means the record could
	// not be read: it is skipped with a warning.
	Apply func(record []byte) error
	// Reset, if set, is called before the file is read again from the start (it was replaced
	// or shrunk): whatever Apply built from the old file must be forgotten.
	Reset func()
	// Log takes warnings: skipped records, torn tails cut off, failed writes.
	Log *slog.Logger
	// OnCommit, if set, is told of every batch written: its size, the time the write and the
	// fsync took, or the error that failed it.
	OnCommit func(records int, write, sync time.Duration, err error)
	// MaxRecordBytes bounds one record: longer ones are refused by Append and skipped when
	// read. Zero means 1 MiB.
	MaxRecordBytes int
	// MaxBytes, if above zero, bounds the records kept (those read and written, with their
	// delimiters; records skipped as unreadable or too long do not count): an append past it
	// fails with ErrFull, and a file that holds more is refused (Open fails, a reload faults)
	// as soon as what was read passes it, before more of it is held in memory.
	MaxBytes int64
	// Recognize reports whether a whole JSON object is a record of this file's kind (a task,
	// a user). A recognized object left after the last delimiter is a record whose delimiter a
	// crash (or an editor) cut off: the delimiter is completed, and the record kept. Any other
	// object there is not ours, and the file is refused. Nil recognizes nothing.
	Recognize func(object []byte) bool
	// Existing opens only a file that is there already, never creating it or its folder
	// (readers such as -import): a missing file is an error wrapping os.ErrNotExist.
	Existing bool
}

// Log is an open record file. Records are handed to the apply function given to Open, in file
// order, exactly once each: those found at open, those other processes append, and its own.
type Log struct {
	path string
	opts Options // as given, with Open's defaults filled in

	mu        sync.Mutex            // serialises reading and writing the file
	file      *os.File              // opened read-only: reads, the size, and the flock
	end       atomic.Int64          // offset just past the last complete record
	kept      atomic.Int64          // bytes of the records handed to Apply, delimiters included
	fault     atomic.Pointer[error] // why the file cannot be used now; nil when it can
	lastCheck atomic.Int64          // unix nanoseconds of the last look at the path
	refused   fileVersion           // the file the last reload refused: not read again unchanged
	closedNow atomic.Bool

	queue   chan *appendRequest
	closing chan struct{}
	stopped chan struct{}
	closed  sync.Once
}

type appendRequest struct {
	record  []byte
	check   func() error
	alone   bool   // check must see every record before it applied: commit on its own
	applied func() // instead of Apply, once written
	result  chan error
}

// Open opens (creating it and its folder if missing) the record file at path and hands every
// complete record in it to opts.Apply. It refuses a path that is not a regular file (a FIFO
// would hang the process), and a file that is not a record file (see the package comment).
func Open(path string, opts Options) (*Log, error) {
	if len(opts.Delimiter) == 0 || opts.Apply == nil || opts.Log == nil {
		return nil, errors.New("recordlog: Delimiter, Apply and Log are required")
	}
	if opts.OnCommit == nil {
		opts.OnCommit = func(int, time.Duration, time.Duration, error) {}
	}
	if opts.Reset == nil {
		opts.Reset = func() {}
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 1 << 20
	}
	l := &Log{
		path:    path,
		opts:    opts,
		queue:   make(chan *appendRequest, maxBatchRecords),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	l.lastCheck.Store(time.Now().UnixNano())
	l.mu.Lock()
	err := l.load()
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	l.completeTail()
	go l.commitLoop()
	return l, nil
}

// load opens the file at l.path and reads it whole, as at open. Callers hold l.mu.
func (l *Log) load() error {
	if !l.opts.Existing {
		if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
			return fmt.Errorf("create folder for %s: %w", l.path, err)
		}
	}
	file, err := openFile(l.path, !l.opts.Existing)
	if err != nil {
		return err
	}
	if err := flock(file, syscall.LOCK_SH); err != nil {
		file.Close()
		return err
	}
	defer flock(file, syscall.LOCK_UN)
	l.end.Store(0)
	l.kept.Store(0)
	if err := l.readNew(file, true); err != nil {
		file.Close()
		return err
	}
	if l.file != nil {
		l.file.Close()
	}
	l.file = file
	return nil
}

// openFile opens path for reading, creating it if missing and create is set; a file it
// creates is made durable by syncing its folder. It refuses anything but a regular file
// (after symlinks): opening a FIFO would block until a writer came, and a device or folder
// is not a record file.
func openFile(path string, create bool) (*os.File, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		created, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		if err == nil {
			created.Close()
			if dir, err := os.Open(filepath.Dir(path)); err == nil {
				dir.Sync()
				dir.Close()
			}
		}
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("%s is a %s, not a regular file: put a file there (or nothing, and one is created)", path, fileKind(info.Mode()))
	}
	// O_NONBLOCK: should a FIFO be put there between the Stat and now, the open returns at
	// once instead of waiting for a writer; the type is checked again on what was opened.
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if info, err := file.Stat(); err != nil || !info.Mode().IsRegular() {
		file.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return file, nil
}

func fileKind(mode os.FileMode) string {
	switch {
	case mode.IsDir():
		return "folder"
	case mode&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case mode&os.ModeSocket != 0:
		return "socket"
	case mode&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// openWriter opens the file for one batch of appends, and makes sure it is still the file
// this Log reads: one put in its place would not match what was read.
func (l *Log) openWriter() (*os.File, error) {
	w, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for writing: %w", l.path, err)
	}
	wInfo, wErr := w.Stat()
	rInfo, rErr := l.file.Stat()
	if wErr != nil || rErr != nil || !os.SameFile(wInfo, rInfo) {
		w.Close()
		return nil, fmt.Errorf("%w: %s was replaced while it was being written", ErrUnavailable, l.path)
	}
	return w, nil
}

// Check reports whether the file can be used now; it looks at the path again (every call,
// unlike reads, which look at most once per second) and reloads a file put in its place.
// Readiness probes call it, every few seconds.
func (l *Log) Check() error {
	l.watch(true)
	return l.faultNow()
}

func (l *Log) faultNow() error {
	if err := l.fault.Load(); err != nil {
		return *err
	}
	return nil
}

// watch looks at the path, at most once per checkEvery unless now is set, and reloads the
// file when another is in its place or it shrank.
func (l *Log) watch(now bool) {
	last := l.lastCheck.Load()
	t := time.Now().UnixNano()
	if (!now && t-last < int64(checkEvery)) || !l.lastCheck.CompareAndSwap(last, t) || l.closedNow.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watchLocked()
}

// fileVersion tells one state of a file from another: which file, its size and its mtime.
type fileVersion struct {
	dev, ino, size uint64
	mtime          int64
}

func versionOf(info os.FileInfo) fileVersion {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileVersion{}
	}
	return fileVersion{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: info.ModTime().UnixNano()}
}

// watchLocked reloads the file if the path no longer leads to the file open, or the file
// shrank, or it could not be used and has changed since. Callers hold l.mu.
func (l *Log) watchLocked() {
	reason := ""
	pathInfo, err := os.Stat(l.path)
	fileInfo, ferr := l.file.Stat()
	switch {
	case l.faultNow() != nil:
		if err == nil && versionOf(pathInfo) == l.refused {
			return // the same file as last time: it would be refused again
		}
		reason = "it could not be used"
	case err != nil || ferr != nil:
		reason = "it is gone"
	case !os.SameFile(pathInfo, fileInfo):
		reason = "another file is in its place"
	case fileInfo.Size() < l.end.Load():
		reason = fmt.Sprintf("it shrank from %d to %d bytes", l.end.Load(), fileInfo.Size())
	default:
		return
	}
	l.reloadLocked(reason)
}

// reloadLocked forgets everything read and reads the file at the path from the start. If
// that fails, the Log is faulted: reads and appends fail until a later check succeeds.
func (l *Log) reloadLocked(reason string) {
	wasFaulted := l.faultNow() != nil
	if !wasFaulted {
		l.opts.Log.Warn("reading the file again from the start", "file", l.path, "because", reason)
	}
	l.opts.Reset()
	if err := l.load(); err != nil {
		l.end.Store(0)
		l.opts.Reset()
		// Logged once per different reason, not at every look at an unusable file.
		if !wasFaulted || !strings.Contains(l.faultNow().Error(), err.Error()) {
			l.opts.Log.Error("the file cannot be used; answering 503 until it can", "file", l.path, "error", err.Error())
		}
		fault := fmt.Errorf("%w: %w", ErrUnavailable, err)
		l.fault.Store(&fault)
		if info, err := os.Stat(l.path); err == nil {
			l.refused = versionOf(info)
		}
		return
	}
	if wasFaulted {
		l.opts.Log.Info("the file can be used again", "file", l.path, "bytes", l.end.Load())
	}
	l.fault.Store(nil)
}

// Refresh reads the records other processes appended since the last read. When nothing was
// appended it costs one fstat (and, once a second, a stat of the path).
func (l *Log) Refresh() error {
	l.watch(false)
	if err := l.faultNow(); err != nil {
		return err
	}
	if size, err := l.size(); err == nil && size == l.end.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.faultNow(); err != nil {
		return err
	}
	unlock, err := l.lockAndCatchUp(syscall.LOCK_SH)
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// Append writes record (which must not contain the delimiter) and returns once it is on disk.
// When check is not nil it runs under the file lock after catching up with other processes,
// just before the write; its error cancels the append (e.g. "this email exists"). Once
// written, the record is handed to Apply, as every record is.
func (l *Log) Append(record []byte, check func() error) error {
	return l.AppendApplied(record, check, nil)
}

// AppendApplied is Append for a caller that already holds what Apply would make of record:
// once it is written, applied is called (in file order, under the lock) instead of Apply,
// so that nothing is decoded again.
func (l *Log) AppendApplied(record []byte, check func() error, applied func()) error {
	return l.append(&appendRequest{record: record, check: check, alone: check != nil, applied: applied})
}

// AppendReserved is AppendApplied with a reserve instead of a check: it runs at the same
// point, but may share a commit (and an fsync) with other appends, so it must count itself
// what the appends before it in the batch took, as a reservation does (tasks' quota).
func (l *Log) AppendReserved(record []byte, reserve func() error, applied func()) error {
	return l.append(&appendRequest{record: record, check: reserve, applied: applied})
}

func (l *Log) append(req *appendRequest) error {
	record := req.record
	if bytes.Contains(record, l.opts.Delimiter) {
		return fmt.Errorf("recordlog: record contains the delimiter %q", l.opts.Delimiter)
	}
	if len(record) > l.opts.MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(record), l.opts.MaxRecordBytes)
	}
	req.result = make(chan error, 1)
	select {
	case l.queue <- req:
	case <-l.closing:
		return ErrClosed
	}
	select {
	case err := <-req.result:
		return err
	case <-l.stopped:
		select {
		case err := <-req.result:
			return err
		default:
			return ErrClosed
		}
	}
}

// Close stops accepting appends, lets the committer finish, and closes the file.
func (l *Log) Close() error {
	var err error
	l.closed.Do(func() {
		l.closedNow.Store(true)
		close(l.closing)
		<-l.stopped
		l.mu.Lock()
		defer l.mu.Unlock()
		err = l.file.Close()
	})
	return err
}

// commitLoop is the single writer: it takes every append waiting, writes them at once, and
// fsyncs once. An append with a check (not a reserve) is committed on its own, so its check
// sees every record before it.
func (l *Log) commitLoop() {
	defer close(l.stopped)
	for {
		var first *appendRequest
		select {
		case first = <-l.queue:
		case <-l.closing:
			return
		}
		batch := []*appendRequest{first}
		if !first.alone {
		gather:
			for len(batch) < maxBatchRecords {
				select {
				case req := <-l.queue:
					if req.alone {
						l.commit(batch)
						batch = []*appendRequest{req}
						break gather
					}
					batch = append(batch, req)
				default:
					break gather
				}
			}
		}
		l.commit(batch)
	}
}

func (l *Log) commit(batch []*appendRequest) {
	results := l.write(batch)
	for i, req := range batch {
		req.result <- results[i]
	}
}

// write appends batch under the exclusive lock and returns each request's result.
func (l *Log) write(batch []*appendRequest) []error {
	results := make([]error, len(batch))
	fail := func(err error) []error {
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
		return results
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A file put in place of ours is read before anything is written to it.
	l.watchLocked()
	if err := l.faultNow(); err != nil {
		return fail(err)
	}
	unlock, err := l.lockAndCatchUp(syscall.LOCK_EX)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	// The file is opened for writing only if there is something to write: a batch whose
	// checks all fail (an email that exists) is answered as such in a read-only folder too.
	var w *os.File
	writer := func() (*os.File, error) {
		if w == nil {
			var err error
			if w, err = l.openWriter(); err != nil {
				return nil, err
			}
		}
		return w, nil
	}
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	start, err := l.settleTail(writer, l.end.Load())
	if err != nil {
		return fail(err)
	}
	var buf []byte
	var written []*appendRequest
	for i, req := range batch {
		if req.check != nil {
			if err := req.check(); err != nil {
				results[i] = err
				continue
			}
		}
		if size := l.kept.Load() + int64(len(buf)+len(req.record)+len(l.opts.Delimiter)); l.opts.MaxBytes > 0 && size > l.opts.MaxBytes {
			results[i] = fmt.Errorf("%w (%d bytes)", ErrFull, l.opts.MaxBytes)
			continue
		}
		buf = append(append(buf, req.record...), l.opts.Delimiter...)
		written = append(written, req)
	}
	l.end.Store(start)
	if len(written) == 0 {
		return results
	}
	if _, err := writer(); err != nil {
		return fail(err)
	}
	began := time.Now()
	if _, err := w.Write(buf); err != nil {
		err = l.undo(w, start, fmt.Errorf("write %s: %w", l.path, err))
		l.opts.OnCommit(len(written), 0, 0, err)
		return fail(err)
	}
	wrote := time.Now()
	if err := w.Sync(); err != nil {
		err = l.undo(w, start, fmt.Errorf("fsync %s: %w", l.path, err))
		l.opts.OnCommit(len(written), 0, 0, err)
		return fail(err)
	}
	l.opts.OnCommit(len(written), wrote.Sub(began), time.Since(wrote), nil)
	l.end.Store(start + int64(len(buf)))
	l.kept.Add(int64(len(buf)))
	for _, req := range written {
		if req.applied != nil {
			req.applied()
		} else if err := l.opts.Apply(req.record); err != nil {
			l.opts.Log.Error("a record just written does not read back", "file", l.path, "error", err)
		}
	}
	return results
}

// settleTail deals with the bytes after the last complete record, under the exclusive lock
// (no writer is active, so they are what a writer that crashed mid-write left behind):
// the start of a record is cut off (appending after it would glue the new record onto
// garbage); a whole record whose delimiter was cut gets the rest of its delimiter, and is
// kept. It returns where the file's complete records now end. Bytes that are neither are
// never changed: the Log is faulted instead.
func (l *Log) settleTail(writer func() (*os.File, error), end int64) (int64, error) {
	size, err := l.size()
	if err != nil {
		return end, err
	}
	if size == end {
		return end, nil
	}
	tail := make([]byte, min(size-end, int64(l.opts.MaxRecordBytes+len(l.opts.Delimiter))+1))
	if _, err := l.file.ReadAt(tail, end); err != nil && !errors.Is(err, io.EOF) {
		return end, fmt.Errorf("read the end of %s: %w", l.path, err)
	}
	kind, object := l.classifyTail(tail)
	if size-end > int64(len(tail)) {
		kind = tailForeign
	}
	var w *os.File
	if kind == tailTorn || kind == tailWhole {
		if w, err = writer(); err != nil {
			return end, err
		}
	}
	switch kind {
	case tailTorn:
		l.opts.Log.Warn("dropping a torn record left by an interrupted write", "file", l.path, "offset", end, "bytes", size-end)
		if err := w.Truncate(end); err != nil {
			return end, fmt.Errorf("truncate torn tail of %s: %w", l.path, err)
		}
		return end, nil
	case tailWhole:
		missing := l.opts.Delimiter[len(tail)-len(object):]
		l.opts.Log.Warn("completing a record whose delimiter was cut off", "file", l.path, "offset", end, "bytes", len(object))
		if _, err := w.Write(missing); err != nil {
			return end, fmt.Errorf("complete the last record of %s: %w", l.path, err)
		}
		if err := l.opts.Apply(object); err != nil {
			l.opts.Log.Warn("skipping an unreadable record", "file", l.path, "offset", end, "bytes", len(object), "error", err)
		}
		return size + int64(len(missing)), nil
	}
	err = fmt.Errorf("%w: %s ends in %d bytes at offset %d that are not a record (nor a torn one): fix or move the file",
		ErrUnavailable, l.path, size-end, end)
	l.opts.Log.Error("refusing to append after bytes that are not a record", "file", l.path, "offset", end, "bytes", size-end)
	l.fault.Store(&err)
	return end, err
}

// What the bytes after the last delimiter are.
type tailKind int

const (
	tailNone    tailKind = iota // nothing
	tailTorn                    // the start of a record: cut it
	tailWhole                   // a whole record of ours, its delimiter cut or partly written
	tailForeign                 // anything else
)

// classifyTail says what tail is, and for a whole record returns it: an interrupted append
// leaves the start of a JSON object (every record here is one), or a whole object followed
// by the start of the delimiter, with no newline in it (records are compact JSON) and no
// longer than a record.
func (l *Log) classifyTail(tail []byte) (tailKind, []byte) {
	if len(tail) == 0 {
		return tailNone, nil
	}
	if tail[0] != '{' || len(tail) > l.opts.MaxRecordBytes+len(l.opts.Delimiter) {
		return tailForeign, nil
	}
	dec := json.NewDecoder(bytes.NewReader(tail))
	var object json.RawMessage
	switch err := dec.Decode(&object); {
	case errors.Is(err, io.ErrUnexpectedEOF):
		if bytes.ContainsAny(tail, "\n") && !bytes.Equal(l.opts.Delimiter, []byte("\n")) {
			return tailForeign, nil
		}
		return tailTorn, nil
	case err != nil:
		return tailForeign, nil
	}
	whole := tail[:dec.InputOffset()]
	if !bytes.HasPrefix(l.opts.Delimiter, tail[len(whole):]) || l.opts.Recognize == nil || !l.opts.Recognize(whole) {
		return tailForeign, nil
	}
	return tailWhole, whole
}

// completeTail gives a whole record left without its delimiter the rest of it, at open, so
// that the record is read now rather than at the next append. It changes nothing if the
// folder cannot be written (the next append will fail and say so).
func (l *Log) completeTail() {
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.lockAndCatchUp(syscall.LOCK_EX)
	if err != nil {
		return
	}
	defer unlock()
	if size, err := l.size(); err != nil || size == l.end.Load() {
		return
	}
	var w *os.File
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	writer := func() (*os.File, error) {
		var err error
		w, err = l.openWriter()
		return w, err
	}
	end, err := l.settleTail(writer, l.end.Load())
	if err != nil {
		l.opts.Log.Warn("cannot settle the end of the file now; the next append will", "file", l.path, "error", err)
		l.fault.Store(nil) // the next append looks again
		return
	}
	if end != l.end.Load() {
		w.Sync()
		l.end.Store(end)
	}
}

// undo cuts a failed write back to where it started, so no partial record stays behind.
func (l *Log) undo(w *os.File, start int64, cause error) error {
	if err := w.Truncate(start); err != nil {
		l.opts.Log.Error("could not cut back a failed write", "file", l.path, "offset", start, "error", err)
	} else {
		w.Sync()
	}
	return cause
}

// lockAndCatchUp takes the flock how (shared to read, exclusive to write) and hands every
// complete record after l.end to Apply. A file that shrank is read again from the start, and
// the lock taken on it. It returns the function that releases the lock. Callers hold l.mu.
func (l *Log) lockAndCatchUp(how int) (unlock func(), err error) {
	for range 2 {
		file := l.file
		if err := flock(file, how); err != nil {
			return nil, err
		}
		unlock = func() { flock(file, syscall.LOCK_UN) }
		size, err := l.size()
		if err != nil {
			unlock()
			return nil, err
		}
		if end := l.end.Load(); size < end {
			unlock()
			l.reloadLocked(fmt.Sprintf("it shrank from %d to %d bytes", end, size))
			if err := l.faultNow(); err != nil {
				return nil, err
			}
			continue
		}
		if size > l.end.Load() {
			if err := l.readNew(file, false); err != nil {
				unlock()
				return nil, err
			}
		}
		return unlock, nil
	}
	return nil, fmt.Errorf("%w: %s keeps changing under this process", ErrUnavailable, l.path)
}

// readNew reads file from l.end to its end, handing each complete record to Apply and moving
// l.end past it. Records over MaxRecordBytes and records Apply refuses are skipped with a
// warning. atOpen, the whole file is being read: it must be a record file (the package
// comment says what that is), else an error names what is wrong and nothing is kept.
func (l *Log) readNew(file *os.File, atOpen bool) error {
	info, err := file.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.path, err)
	}
	size := info.Size()
	end := l.end.Load()
	reader := io.NewSectionReader(file, end, size-end)
	limit := l.opts.MaxRecordBytes + len(l.opts.Delimiter)
	block := make([]byte, 64<<10)
	var pending []byte // the record being read, from pendingAt
	pendingAt := end
	var skipped int64 // > 0: reading past a record too long to keep
	var read, failed int
	for {
		n, err := reader.Read(block)
		searchFrom := max(len(pending)-len(l.opts.Delimiter)+1, 0)
		pending = append(pending, block[:n]...)
		for {
			i := bytes.Index(pending[searchFrom:], l.opts.Delimiter)
			if i < 0 {
				break
			}
			i += searchFrom
			recordEnd := pendingAt + int64(i) + int64(len(l.opts.Delimiter))
			switch {
			case skipped > 0:
				l.opts.Log.Warn("skipping a record longer than the limit", "file", l.path, "offset", pendingAt-skipped,
					"bytes", skipped+int64(i), "limit", l.opts.MaxRecordBytes)
				failed++
				skipped = 0
			case i > l.opts.MaxRecordBytes:
				l.opts.Log.Warn("skipping a record longer than the limit", "file", l.path, "offset", pendingAt,
					"bytes", i, "limit", l.opts.MaxRecordBytes)
				failed++
			default:
				if err := l.opts.Apply(pending[:i]); err != nil {
					l.opts.Log.Warn("skipping an unreadable record", "file", l.path, "offset", pendingAt, "bytes", i, "error", err)
					failed++
				} else {
					read++
					kept := l.kept.Add(int64(i + len(l.opts.Delimiter)))
					if limit := l.opts.MaxBytes; limit > 0 && kept > limit {
						l.end.Store(end)
						return fmt.Errorf("%s %w of %d bytes (%d bytes of records in its first %d bytes, of %d): "+
							"it would not fit in this process's memory; refusing to load it, nothing was changed",
							l.path, ErrOverLimit, limit, kept, recordEnd, size)
					}
				}
			}
			pending = pending[i+len(l.opts.Delimiter):]
			pendingAt = recordEnd
			end = recordEnd
			searchFrom = 0
		}
		if len(pending) > limit {
			// Too long to be a record: keep only what could begin the delimiter.
			keep := len(l.opts.Delimiter) - 1
			skipped += int64(len(pending) - keep)
			pendingAt += int64(len(pending) - keep)
			pending = append(pending[:0], pending[len(pending)-keep:]...)
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			break
		}
		if err != nil {
			l.end.Store(end)
			return fmt.Errorf("read %s at offset %d: %w", l.path, end, err)
		}
	}
	if atOpen {
		switch {
		case read == 0 && failed > 0:
			return fmt.Errorf("%s is not a record file: none of its %d records can be read (at offset 0: %q); "+
				"refusing to use it, nothing was changed", l.path, failed, preview(file))
		case skipped > 0 || l.tailIsForeign(pending):
			return fmt.Errorf("%s is not a record file: it ends in %d bytes at offset %d that are not a record "+
				"separated by %q (%q); refusing to use it, nothing was changed", l.path, size-end, end, l.opts.Delimiter, preview(file, end))
		}
	}
	l.end.Store(end)
	return nil
}

// tailIsForeign reports whether tail is not ours (see classifyTail).
func (l *Log) tailIsForeign(tail []byte) bool {
	kind, _ := l.classifyTail(tail)
	return kind == tailForeign
}

// preview is the first bytes of file from offset (0 by default), to show in an error.
func preview(file *os.File, offset ...int64) string {
	at := int64(0)
	if len(offset) > 0 {
		at = offset[0]
	}
	buf := make([]byte, 40)
	n, _ := file.ReadAt(buf, at)
	return string(buf[:n])
}

// size is the file's size now. It is asked on every read (Refresh), so it uses fstat with no
// os.FileInfo to allocate.
func (l *Log) size() (int64, error) {
	conn, err := l.file.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", l.path, err)
	}
	var st syscall.Stat_t
	var statErr error
	if err := conn.Control(func(fd uintptr) {
		statErr = syscall.Fstat(int(fd), &st)
	}); err != nil {
		return 0, fmt.Errorf("stat %s: %w", l.path, err)
	}
	if statErr != nil {
		return 0, fmt.Errorf("stat %s: %w", l.path, statErr)
	}
	return st.Size, nil
}

func flock(file *os.File, how int) error {
	for {
		err := syscall.Flock(int(file.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return fmt.Errorf("flock %s: %w", file.Name(), err)
			}
			return nil
		}
	}
}
