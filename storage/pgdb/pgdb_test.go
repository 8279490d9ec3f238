package pgdb

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunTests(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// schema is two migrations; the second fails if the first ran twice or not at all.
var schema = Schema{Name: "things", Lock: 0x7465737400000001, Migrations: fstest.MapFS{
	"migrations/0001_things.sql": {Data: []byte(`CREATE TABLE things (id int PRIMARY KEY)`)},
	"migrations/0002_one.sql":    {Data: []byte(`INSERT INTO things VALUES (1)`)},
}}

func open(t *testing.T, url string) *DB {
	t.Helper()
	d, err := Open(Config{URL: url, MaxConns: 2, Timeout: 10 * time.Second}, schema, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestReplicasStartingTogetherMigrateOnce: eight processes' pools migrating one database at
// once apply each migration once, in order, and become ready; migrating again applies nothing.
func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var dbs []*DB
	for range 8 {
		d := open(t, url)
		dbs = append(dbs, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- d.Migrate(t.Context())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a replica's migration: %v", err)
		}
	}
	if err := dbs[0].Migrate(t.Context()); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	var applied, things int
	if err := dbs[0].Pool.QueryRow(t.Context(), "SELECT (SELECT count(*) FROM things_schema_migrations), (SELECT count(*) FROM things)").Scan(&applied, &things); err != nil {
		t.Fatal(err)
	}
	if applied != 2 || things != 1 {
		t.Fatalf("%d migrations recorded and %d rows, want 2 and 1: each migration once", applied, things)
	}
	for i, d := range dbs {
		if err := d.Check(t.Context()); err != nil {
			t.Errorf("replica %d after migrating: %v", i, err)
		}
	}
}

// TestNoServerIsUnavailableWithoutThePassword: with nothing behind the URL, migrating fails
// within about the timeout, and readiness says unavailable (a 503) without the password.
func TestNoServerIsUnavailableWithoutThePassword(t *testing.T) {
	d, err := Open(Config{URL: pgtest.UnreachableURL(t), MaxConns: 1, Timeout: time.Second}, schema, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	if err := d.Migrate(t.Context()); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Migrate with no server: %v after %s", err, time.Since(start))
	}
	for name, err := range map[string]error{"Ready": d.Ready(), "Check": d.Check(t.Context())} {
		if !errors.Is(err, recordlog.ErrUnavailable) || strings.Contains(err.Error(), pgtest.UnreachablePassword) {
			t.Errorf("%s: %v, want ErrUnavailable and no password", name, err)
		}
	}
}
