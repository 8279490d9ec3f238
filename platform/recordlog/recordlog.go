// Package recordlog keeps an append-only file of records, each followed by a delimiter,
// safely shared by goroutines and by processes (replicas on one volume):
//
//   - an append is acknowledged only once it is on disk (write, then fsync);
//   - concurrent appends share one write and one fsync (group commit);
//   - appends hold an exclusive flock, so records of two processes never interleave;
//   - a record torn by a crash (bytes after the last delimiter) is ignored when read, and
//     cut off before the next append, so the file stays loadable by any reader that splits
//     on the delimiter;
//   - a failed write or fsync is cut back, leaving no partial record;
//   - readers catch up incrementally: only bytes added since the last read are parsed;
//   - the file is open for writing only while a batch is written, so a folder that turns
//     read-only (or a full disk) fails those appends with an error, and reads go on.
package recordlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxRecordBytes bounds one record as read back.
const MaxRecordBytes = 16 << 20

// maxBatchRecords bounds how many appends share one write and fsync.
const maxBatchRecords = 512

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("recordlog: closed")

// Log is an open record file. Records are handed to the apply function given to Open, in file
// order, exactly once each: those found at open, those other processes append, and its own.
type Log struct {
	path     string
	delim    []byte
	apply    func(record []byte) error
	log      *slog.Logger
	onCommit func(records int, write, sync time.Duration, err error)

	mu   sync.Mutex   // serialises reading and writing the file
	file *os.File     // opened read-only: reads, the size, and the flock
	end  atomic.Int64 // offset just past the last complete record

	queue   chan *appendRequest
	closing chan struct{}
	stopped chan struct{}
	closed  sync.Once
}

type appendRequest struct {
	record []byte
	check  func() error
	result chan error
}

// Options configure a Log.
type Options struct {
	// Delimiter ends every record; records must not contain it.
	Delimiter []byte
	// Apply is handed every record, in file order, once.
	Apply func(record []byte) error
	// Log takes warnings: skipped records, torn tails cut off, failed writes.
	Log *slog.Logger
	// OnCommit, if set, is told of every batch written: its size, the time the write and the
	// fsync took, or the error that failed it.
	OnCommit func(records int, write, sync time.Duration, err error)
}

// Open opens (creating it and its folder if missing) the record file at path and hands every
// complete record in it to opts.Apply. Unreadable records (Apply returns an error) are
// skipped with a warning; a torn last record is ignored.
func Open(path string, opts Options) (*Log, error) {
	if len(opts.Delimiter) == 0 || opts.Apply == nil || opts.Log == nil {
		return nil, errors.New("recordlog: Delimiter, Apply and Log are required")
	}
	if opts.OnCommit == nil {
		opts.OnCommit = func(int, time.Duration, time.Duration, error) {}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create folder for %s: %w", path, err)
	}
	file, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l := &Log{
		path:     path,
		delim:    opts.Delimiter,
		apply:    opts.Apply,
		log:      opts.Log,
		onCommit: opts.OnCommit,
		file:     file,
		queue:    make(chan *appendRequest, maxBatchRecords),
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	if err := l.Refresh(); err != nil {
		file.Close()
		return nil, err
	}
	go l.commitLoop()
	return l, nil
}

// openFile opens path for reading, creating it if missing; a file it creates is made durable
// by syncing its folder.
func openFile(path string) (*os.File, error) {
	file, err := os.Open(path)
	if err == nil {
		return file, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	created, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	created.Close()
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return os.Open(path)
}

// openWriter opens the file for one batch of appends, and makes sure it is still the file
// this Log reads: one put in its place would not match what was read.
func (l *Log) openWriter() (*os.File, error) {
	w, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for writing: %w", l.path, err)
	}
	wInfo, wErr := w.Stat()
	rInfo, rErr := l.file.Stat()
	if wErr != nil || rErr != nil || !os.SameFile(wInfo, rInfo) {
		w.Close()
		return nil, fmt.Errorf("%s was replaced or removed while open: restart to read the new file", l.path)
	}
	return w, nil
}

// Refresh reads the records other processes appended since the last read. When nothing was
// appended it costs one fstat.
func (l *Log) Refresh() error {
	if size, err := l.size(); err == nil && size == l.end.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := flock(l.file, syscall.LOCK_SH); err != nil {
		return err
	}
	defer flock(l.file, syscall.LOCK_UN)
	return l.catchUp()
}

// Append writes record (which must not contain the delimiter) and returns once it is on disk.
// When check is not nil it runs under the file lock after catching up with other processes,
// just before the write; its error cancels the append (e.g. "this email exists").
func (l *Log) Append(record []byte, check func() error) error {
	if bytes.Contains(record, l.delim) {
		return fmt.Errorf("recordlog: record contains the delimiter %q", l.delim)
	}
	req := &appendRequest{record: record, check: check, result: make(chan error, 1)}
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
		close(l.closing)
		<-l.stopped
		l.mu.Lock()
		defer l.mu.Unlock()
		err = l.file.Close()
	})
	return err
}

// commitLoop is the single writer: it takes every append waiting, writes them at once, and
// fsyncs once. An append with a check is committed on its own, so its check sees every
// record before it.
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
		if first.check == nil {
		gather:
			for len(batch) < maxBatchRecords {
				select {
				case req := <-l.queue:
					if req.check != nil {
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
	if err := flock(l.file, syscall.LOCK_EX); err != nil {
		return fail(err)
	}
	defer flock(l.file, syscall.LOCK_UN)
	if err := l.catchUp(); err != nil {
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
		buf = append(append(buf, req.record...), l.delim...)
		written = append(written, req)
	}
	if len(written) == 0 {
		return results
	}
	w, err := l.openWriter()
	if err != nil {
		return fail(err)
	}
	defer w.Close()
	start := l.end.Load()
	if err := l.dropTornTail(w, start); err != nil {
		return fail(err)
	}
	began := time.Now()
	if _, err := w.Write(buf); err != nil {
		err = l.undo(w, start, fmt.Errorf("write %s: %w", l.path, err))
		l.onCommit(len(written), 0, 0, err)
		return fail(err)
	}
	wrote := time.Now()
	if err := w.Sync(); err != nil {
		err = l.undo(w, start, fmt.Errorf("fsync %s: %w", l.path, err))
		l.onCommit(len(written), 0, 0, err)
		return fail(err)
	}
	l.onCommit(len(written), wrote.Sub(began), time.Since(wrote), nil)
	l.end.Store(start + int64(len(buf)))
	for _, req := range written {
		if err := l.apply(req.record); err != nil {
			l.log.Error("a record just written does not read back", "file", l.path, "error", err)
		}
	}
	return results
}

// dropTornTail cuts bytes after the last complete record. Under the exclusive lock no writer
// is active, so such bytes are what a writer that crashed mid-write left behind; appending
// after them would glue the new record onto garbage.
func (l *Log) dropTornTail(w *os.File, end int64) error {
	size, err := l.size()
	if err != nil {
		return err
	}
	if size == end {
		return nil
	}
	l.log.Warn("dropping a torn record left by an interrupted write", "file", l.path, "offset", end, "bytes", size-end)
	if err := w.Truncate(end); err != nil {
		return fmt.Errorf("truncate torn tail of %s: %w", l.path, err)
	}
	return nil
}

// undo cuts a failed write back to where it started, so no partial record stays behind.
func (l *Log) undo(w *os.File, start int64, cause error) error {
	if err := w.Truncate(start); err != nil {
		l.log.Error("could not cut back a failed write", "file", l.path, "offset", start, "error", err)
	} else {
		w.Sync()
	}
	return cause
}

// catchUp hands every complete record after l.end to apply. Callers hold l.mu and a flock.
func (l *Log) catchUp() error {
	size, err := l.size()
	if err != nil {
		return err
	}
	end := l.end.Load()
	if size < end {
		return fmt.Errorf("%s shrank from %d to %d bytes: it was changed by something other than kub-demo", l.path, end, size)
	}
	if size == end {
		return nil
	}
	scanner := bufio.NewScanner(io.NewSectionReader(l.file, end, size-end))
	scanner.Buffer(make([]byte, 0, 64<<10), MaxRecordBytes+len(l.delim))
	scanner.Split(l.splitRecords)
	for scanner.Scan() {
		record := scanner.Bytes()
		if err := l.apply(record); err != nil {
			l.log.Warn("skipping an unreadable record", "file", l.path, "offset", end, "bytes", len(record), "error", err)
		}
		end += int64(len(record) + len(l.delim))
	}
	l.end.Store(end)
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("read %s at offset %d: %w", l.path, end, err)
	}
	return nil
}

// splitRecords yields each record before a delimiter; bytes after the last delimiter are a
// record still being written, or torn by a crash, and are left unread.
func (l *Log) splitRecords(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.Index(data, l.delim); i >= 0 {
		return i + len(l.delim), data[:i], nil
	}
	return 0, nil, nil
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
