package retry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestUntilRetriesAndLogsEachReasonOnce: two failures with one reason, one with another, then
// success: true after four tries, and two warn lines, one per reason.
func TestUntilRetriesAndLogsEachReasonOnce(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	answers := []error{errors.New("refused"), errors.New("refused"), errors.New("timeout"), nil}
	tries := 0
	ok := Until(t.Context(), log, time.Millisecond, "not ready yet", func(context.Context) error {
		tries++
		return answers[tries-1]
	}, "dependency", "auth")
	if !ok || tries != 4 {
		t.Fatalf("Until = %v after %d tries, want true after 4", ok, tries)
	}
	if n := strings.Count(logs.String(), "not ready yet"); n != 2 || !strings.Contains(logs.String(), "dependency=auth") {
		t.Fatalf("%d warn lines, want 2 with the attributes:\n%s", n, logs.String())
	}
}

// TestUntilStopsWithItsContext: a step that never works is given up when ctx ends.
func TestUntilStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	done := make(chan bool)
	go func() {
		done <- Until(ctx, log, 10*time.Millisecond, "never", func(context.Context) error { return errors.New("down") })
	}()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Until reported success for a step that never worked")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Until did not stop when its context ended")
	}
}
