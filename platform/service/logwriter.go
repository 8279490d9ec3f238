package service

import (
	"fmt"
	"io"
	"sync"
	"time"
)

const (
	// flushEvery bounds how long a log line waits in the buffer before it is written out.
	flushEvery = 50 * time.Millisecond
	// maxPending bounds the lines waiting to be written: past it, while stdout is not being
	// read (a pipe nobody drains, a stuck log agent), lines are dropped and counted.
	maxPending = 1 << 20
	// flushWait is how long flush waits for what is waiting to be written out: a warning is
	// seen when it happens, unless stdout is not being read.
	flushWait = 100 * time.Millisecond
)

// logWriter buffers what a service writes to stdout (its JSON log lines, one per request at
// info level) and writes it out from a goroutine of its own every flushEvery, when 64 KiB
// are waiting, and at Close: one write system call for a batch of lines instead of one per
// line under load, and every line out within flushEvery. Nothing is lost at a normal stop
// (SIGTERM: Main closes it); a SIGKILL loses at most the last flushEvery of lines.
// Common.Logger has warnings and errors written out at once (flush).
//
// Writing never waits for stdout: when it is not being read, a request that logs must not
// hang (they did, after ~250 requests, with the probes, which log nothing, still 200). Lines
// past maxPending are dropped, and once stdout takes lines again a warning says how many.
type logWriter struct {
	out io.Writer

	mu      sync.Mutex
	pending []byte
	spare   []byte        // the buffer last written out, for reuse
	dropped int           // lines dropped since the last write out
	written chan struct{} // closed once what is pending now is written out (flush)

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{out: w, written: make(chan struct{}), kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushLoop()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.add(p)
	return len(p), nil
}

// add puts p in line to be written out, or drops it when too much is waiting.
func (l *logWriter) add(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending)+len(p) > maxPending {
		l.dropped++
		return
	}
	l.pending = append(l.pending, p...)
	if len(l.pending) >= 64<<10 {
		l.wake()
	}
}

func (l *logWriter) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// flush has what is waiting written out now, and waits at most flushWait for it.
func (l *logWriter) flush() {
	l.mu.Lock()
	written := l.written
	l.mu.Unlock()
	l.wake()
	select {
	case <-written:
	case <-time.After(flushWait):
	}
}

func (l *logWriter) flushLoop() {
	defer close(l.done)
	ticker := time.NewTicker(flushEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-l.kick:
		case <-l.stop:
			l.writeOut()
			return
		}
		l.writeOut()
	}
}

// writeOut writes out what is waiting, and says how many lines were dropped before it.
func (l *logWriter) writeOut() {
	l.mu.Lock()
	data, dropped, written := l.pending, l.dropped, l.written
	if len(data) == 0 && dropped == 0 {
		l.mu.Unlock()
		return
	}
	l.pending, l.spare, l.dropped, l.written = l.spare[:0], nil, 0, make(chan struct{})
	l.mu.Unlock()
	if dropped > 0 {
		data = fmt.Appendf(data, `{"time":%q,"level":"WARN","msg":"log lines dropped: stdout was not being read","dropped":%d}`+"\n",
			time.Now().UTC().Format(time.RFC3339Nano), dropped)
	}
	l.out.Write(data) // a failed write is nothing to log to: stdout is where logs go
	close(written)
	l.mu.Lock()
	l.spare = data[:0]
	l.mu.Unlock()
}

// Close writes out what is left and stops the flushing; it waits at most a second for a
// stdout that is not being read.
func (l *logWriter) Close() error {
	close(l.stop)
	select {
	case <-l.done:
	case <-time.After(time.Second):
	}
	return nil
}
