package service

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// flushEvery bounds how long a log line waits in the buffer before it is written out.
const flushEvery = 50 * time.Millisecond

// logWriter buffers what a service writes to stdout (its JSON log lines, one per request at
// info level) and writes it out every flushEvery, when the buffer fills, and at Close: one
// write system call for a batch of lines instead of one per line under load, and every line
// out within flushEvery. Nothing is lost at a normal stop (SIGTERM: Main closes it); a
// SIGKILL loses at most the last flushEvery of lines. Common.Logger writes warnings and
// errors out at once.
type logWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushLoop()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logWriter) flushLoop() {
	defer close(l.done)
	ticker := time.NewTicker(flushEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Flush() // nothing to write: no system call
}

// Close writes out what is left and stops the flushing.
func (l *logWriter) Close() error {
	close(l.stop)
	<-l.done
	return nil
}
