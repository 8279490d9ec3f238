package pgtest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kub-demo/kub-demo/harness"
)

// The test binary's server, started by the first NewDatabase.
var shared struct {
	once   sync.Once
	server *Server
	err    error
	dbs    atomic.Int64
}

// NewDatabase returns the URL of a new, empty database of its own for t, on the test
// binary's server, which it starts at first use. When no server can start (no binaries, or
// root with no "postgres" user) the test is skipped with the reason (harness.Skip: it fails
// under CI).
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	name := fmt.Sprintf("t%d_%s", shared.dbs.Add(1), databaseName.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	name = name[:min(len(name), 63)] // PostgreSQL's longest name
	if err := s.CreateDatabase(name); err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, s.Logs())
	}
	return s.URL(name)
}

// Shared returns the test binary's server, starting it at first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.server, shared.err = Start(Options{}) })
	if shared.err != nil {
		harness.Skip(t, fmt.Sprintf("pgtest: no PostgreSQL server for this test: %v", shared.err))
	}
	return shared.server
}

// RunTests runs the package's tests, then stops the server NewDatabase started (if it did).
func RunTests(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}

// StopShared stops the server NewDatabase started, if it did: for a TestMain that cannot
// end with RunTests (it ends with another package's).
func StopShared() {
	if shared.server != nil {
		if err := shared.server.Stop(); err != nil {
			fmt.Println("pgtest:", err)
		}
	}
}

// UnreachablePassword is the password in UnreachableURL, for tests to check that no error
// shows it.
const UnreachablePassword = "secret-pw"

// UnreachableURL returns a PostgreSQL URL, with UnreachablePassword, of a loopback port that
// nothing listens on: a database that is down.
func UnreachableURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	return fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/db", UnreachablePassword, port)
}
