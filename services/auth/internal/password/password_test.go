package password

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashMatchesOnlyItsPassword(t *testing.T) {
	h, err := NewHasher(4)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash("testers")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "testers") || !strings.HasPrefix(hash, "$2a$04$") {
		t.Fatalf("hash %q is not a cost-4 bcrypt hash", hash)
	}
	if !h.Matches(hash, "testers") {
		t.Error("the right password does not match")
	}
	for _, wrong := range []string{"tester", "Testers", "", "testers "} {
		if h.Matches(hash, wrong) {
			t.Errorf("%q matches", wrong)
		}
	}
	for _, badHash := range []string{"", "not-a-hash", "testers"} {
		if h.Matches(badHash, "testers") {
			t.Errorf("malformed hash %q matches", badHash)
		}
	}
}

func TestHashRefusesPasswordsBcryptWouldTruncate(t *testing.T) {
	h, _ := NewHasher(4)
	if _, err := h.Hash(strings.Repeat("x", 73)); err == nil {
		t.Fatal("a 73-byte password was hashed")
	}
}

func TestNewHasherRefusesCostOutOfRange(t *testing.T) {
	for _, cost := range []int{3, 32} {
		if _, err := NewHasher(cost); err == nil {
			t.Errorf("cost %d accepted", cost)
		}
	}
}

// TestDummyHashCostsAFullComparison: the hash compared against for an unknown user is a
// well-formed bcrypt hash at the configured cost, so bcrypt runs in full on it and refuses.
func TestDummyHashCostsAFullComparison(t *testing.T) {
	for _, cost := range []int{4, 10, 31} {
		h, err := NewHasher(cost)
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
	a, _ := NewHasher(4)
	b, _ := NewHasher(4)
	if string(a.dummy) == string(b.dummy) {
		t.Error("two hashers share a dummy hash")
	}
}
