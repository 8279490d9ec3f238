package harness

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"
)

// Eventually calls check every interval until it returns nil, and fails the test with its
// last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout, interval time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// RandomHex is n random bytes in hex: names and keys of a test's own.
func RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
