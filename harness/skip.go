package harness

import (
	"os"
	"testing"
)

// The one skip policy of every test here: a test that cannot run where it is (no Docker, no
// Chromium, no PostgreSQL, not root, -short) is skipped on a developer's machine, and fails
// under CI (the CI variable set, as .ci/run sets it), where every test must run.

// Skip skips t, saying why, unless CI is set: then t fails with the same reason.
func Skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this fails instead of skipping", why)
	}
	t.Skip(why)
}

// SkipShort skips t in -short mode (make check), by Skip: what builds binaries or images, or
// runs a browser, is not a unit test.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		Skip(t, what+": not in -short mode")
	}
}
