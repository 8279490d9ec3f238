package service

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogLinesGoOutSoonAndNoneIsLostAtClose: a line written is out within a few flush
// periods, and every line written before Close is out after it.
func TestLogLinesGoOutSoonAndNoneIsLostAtClose(t *testing.T) {
	out := &lockedBuffer{}
	l := newLogWriter(out)
	l.Write([]byte("first\n"))
	deadline := time.Now().Add(5 * time.Second) // flushEvery, and room for a busy machine
	for out.String() != "first\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 1000 {
		l.Write([]byte(strings.Repeat("x", i%100) + "\n"))
	}
	l.Close()
	if got := strings.Count(out.String(), "\n"); got != 1001 {
		t.Fatalf("%d lines out after Close, want 1001", got)
	}
}

// TestWarningsGoOutAtOnce: a warning is out when the logging call returns (an operator
// sees a failure when it happens, and a crash right after loses nothing of it), after the
// lines logged before it.
func TestWarningsGoOutAtOnce(t *testing.T) {
	out := &lockedBuffer{}
	l := newLogWriter(out)
	defer l.Close()
	log := Common{LogLevel: slog.LevelInfo}.Logger(l, "test")
	log.Info("request", "path", "/tasks")
	log.Warn("auth unreachable")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"msg":"request"`) || !strings.Contains(lines[1], `"msg":"auth unreachable"`) {
		t.Fatalf("out right after the warning: %q", out.String())
	}
}

// stuckWriter blocks every write until released, as a pipe nobody reads does.
type stuckWriter struct {
	release chan struct{}
	lockedBuffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.lockedBuffer.Write(p)
}

// TestStdoutNotReadNeverBlocksALogger: with stdout not being read, writing lines, and
// flushing them as a warning does, returns at once, whatever the number; once
// stdout is read again, what was kept comes out with a warning counting what was dropped.
func TestStdoutNotReadNeverBlocksALogger(t *testing.T) {
	out := &stuckWriter{release: make(chan struct{})}
	l := newLogWriter(out)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	start := time.Now()
	for range 4000 { // 4 MiB: past what is kept
		l.Write(line)
	}
	l.Write([]byte("an error\n"))
	l.flush() // as for a warning
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("4,000 lines with stdout not read took %s to write", took)
	}
	close(out.release)
	l.Close()
	got := out.String()
	if !strings.Contains(got, `"msg":"log lines dropped: stdout was not being read"`) || strings.Count(got, "\n") < 1000 {
		t.Fatalf("after stdout was read again: %d lines, the last %.200q", strings.Count(got, "\n"), got[max(0, len(got)-200):])
	}
}
