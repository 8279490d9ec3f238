package password

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var ctx = context.Background()

func TestHashMatchesOnlyItsPassword(t *testing.T) {
	h, err := NewHasher(Options{Cost: 4, Workers: 2, Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(ctx, "testers")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "testers") || !strings.HasPrefix(hash, "$2a$04$") {
		t.Fatalf("hash %q is not a cost-4 bcrypt hash", hash)
	}
	if ok, err := h.Matches(ctx, hash, "testers"); !ok || err != nil {
		t.Error("the right password does not match")
	}
	for _, wrong := range []string{"tester", "Testers", "", "testers "} {
		if ok, _ := h.Matches(ctx, hash, wrong); ok {
			t.Errorf("%q matches", wrong)
		}
	}
	for _, badHash := range []string{"", "not-a-hash", "testers"} {
		if ok, _ := h.Matches(ctx, badHash, "testers"); ok {
			t.Errorf("malformed hash %q matches", badHash)
		}
	}
}

func TestHashRefusesPasswordsBcryptWouldTruncate(t *testing.T) {
	h, _ := NewHasher(Options{Cost: 4, Workers: 2, Queue: 2})
	if _, err := h.Hash(ctx, strings.Repeat("x", 73)); err == nil {
		t.Fatal("a 73-byte password was hashed")
	}
}

func TestNewHasherRefusesCostOutOfRange(t *testing.T) {
	for _, cost := range []int{3, 32} {
		if _, err := NewHasher(Options{Cost: cost, Workers: 2, Queue: 2}); err == nil {
			t.Errorf("cost %d accepted", cost)
		}
	}
}

// TestDummyHashCostsAFullComparison: the hash compared against for an unknown user is a
// well-formed bcrypt hash at the configured cost, so bcrypt runs in full on it and refuses.
func TestDummyHashCostsAFullComparison(t *testing.T) {
	for _, cost := range []int{4, 10, 31} {
		h, err := NewHasher(Options{Cost: cost, Workers: 2, Queue: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost(h.dummy); err != nil || got != cost {
			t.Fatalf("dummy hash %q: cost %d, %v; want %d", h.dummy, got, err, cost)
		}
		if cost > 10 {
			continue // a comparison at cost 31 takes days
		}
		if err := bcrypt.CompareHashAndPassword(h.dummy, []byte("testers")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			t.Fatalf("comparing with the dummy hash: %v, want a mismatch after a full comparison", err)
		}
	}
	a, _ := NewHasher(Options{Cost: 4, Workers: 2, Queue: 2})
	b, _ := NewHasher(Options{Cost: 4, Workers: 2, Queue: 2})
	if string(a.dummy) == string(b.dummy) {
		t.Error("two hashers share a dummy hash")
	}
}

// TestHigherCostHashesAreRefusedWithoutHashing: a caller cannot make auth burn seconds (or,
// at cost 31, days) of CPU by handing it a hash of its own making.
func TestHigherCostHashesAreRefusedWithoutHashing(t *testing.T) {
	h, _ := NewHasher(Options{Cost: 4, Workers: 1, Queue: 0})
	costly, err := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	if err != nil {
		t.Fatal(err)
	}
	cost31 := "$2a$31$" + strings.Repeat("a", 53)
	for _, hash := range []string{string(costly), cost31} {
		if ok, err := h.Matches(ctx, hash, "pw"); ok || !errors.Is(err, ErrCostNotAccepted) {
			t.Fatalf("Matches(cost %.6s…) = %v, %v; want ErrCostNotAccepted", hash, ok, err)
		}
	}
	// A lower cost, as left by an earlier BCRYPT_COST, still works.
	h10, _ := NewHasher(Options{Cost: 10, Workers: 1, Queue: 0})
	cheap, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	if ok, err := h10.Matches(ctx, string(cheap), "pw"); !ok || err != nil {
		t.Fatalf("a cost-4 hash at cost 10: %v, %v", ok, err)
	}
}

// TestWorkIsBoundedAndDroppedWhenTheCallerLeaves: with its one worker busy and its one queue
// place taken, a third caller is told ErrBusy at once; a queued caller that gives up is not
// hashed for.
func TestWorkIsBoundedAndDroppedWhenTheCallerLeaves(t *testing.T) {
	h, _ := NewHasher(Options{Cost: 4, Workers: 1, Queue: 1})
	release := make(chan struct{})
	running := make(chan struct{})
	go h.work(ctx, func() { close(running); <-release })
	<-running

	queuedCtx, giveUp := context.WithCancel(ctx)
	queued := make(chan error)
	var ran atomic.Bool
	go func() { queued <- h.work(queuedCtx, func() { ran.Store(true) }) }()

	// Wait until the second caller holds its queue place.
	for len(h.queue) < 2 {
		runtime.Gosched()
	}
	start := time.Now()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third caller: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > time.Second { // at once; a second for a busy machine
		t.Errorf("ErrBusy took %s, want it at once", took)
	}
	giveUp()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up: %v, want context.Canceled", err)
	}
	close(release)
	// Once a worker has done the next caller's work, it has passed the gone caller's place.
	if hash, err := h.Hash(ctx, "pw"); err != nil || hash == "" {
		t.Fatalf("once free: %q, %v", hash, err)
	}
	if ran.Load() {
		t.Fatal("work was done for a caller that had gone")
	}
}
