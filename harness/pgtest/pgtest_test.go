package pgtest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(RunTests(m)) }

// TestServerAcceptsConnectionsAndStopsClean: the server listens on loopback, each test gets
// a database of its own, and Stop leaves no folder and no listener behind.
func TestServerAcceptsConnectionsAndStopsClean(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
	if err != nil {
		t.Fatalf("nothing listens on the server's port: %v", err)
	}
	c.Close()
	if err := s.CreateDatabase("one"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase("one"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("the same database twice: %v, want an error saying it exists", err)
	}
	if !strings.HasPrefix(s.URL("one"), "postgres://postgres@127.0.0.1:") {
		t.Errorf("URL %s", s.URL("one"))
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("the server's folder %s is still there: %v", s.dir, err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on %d after Stop", s.Port)
	}
}

func TestNewDatabaseGivesEachTestItsOwn(t *testing.T) {
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
}

func TestMissingBinariesAreNamed(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	if _, err := Start(Options{}); err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("Start with no binaries: %v, want an error saying what to install", err)
	}
}
