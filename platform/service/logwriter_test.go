package service

import (
	"bytes"
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
	deadline := time.Now().Add(5 * flushEvery)
	for out.String() != "first\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %q", 5*flushEvery, out.String())
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
