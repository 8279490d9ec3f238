// Package pgdb is what the PostgreSQL stores of users and tasks share: the pool DATABASE_URL
// opens (sized and bounded by settings, durable commits forced), the schema migrated at start
// under an advisory lock (replicas may start at once, and before their database), readiness
// on the database, pool metrics, and the database's errors in the stores' words.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/retry"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

// Config is how to reach the database.
type Config struct {
	// URL is DATABASE_URL: postgres://user:password@host:port/database?sslmode=…
	URL string
	// MaxConns bounds the pool: the most statements this process runs at once.
	MaxConns int32
	// Timeout bounds one call, the wait for a connection included: past it the call fails
	// with recordlog.ErrUnavailable, as a store that cannot be used now.
	Timeout time.Duration
}

// Schema is a store's tables: its migrations (files migrations/*.sql, applied in name
// order) and its name, which names its migrations table (<name>_schema_migrations) and the
// pool's application_name.
type Schema struct {
	Name       string
	Migrations fs.FS // usually an embed.FS of migrations/*.sql
	// Lock is the advisory lock key replicas starting at once take in turn (any constant no
	// other program sharing the database uses).
	Lock int64
}

// DB is one store's pool and schema.
type DB struct {
	Pool    *pgxpool.Pool
	Timeout time.Duration
	schema  Schema
	log     *slog.Logger

	migrated   atomic.Bool
	mu         sync.Mutex
	migrateErr error // why the last migration attempt failed
}

// Open prepares the pool; it connects only when first used (see WaitMigrated).
func Open(cfg Config, schema Schema, log *slog.Logger) (*DB, error) {
	if cfg.MaxConns < 1 || cfg.Timeout <= 0 {
		return nil, errors.New("pgdb: MaxConns must be at least 1 and Timeout positive")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err) // pgx leaves the password out
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = 0
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > cfg.Timeout {
		pc.ConnConfig.ConnectTimeout = cfg.Timeout
	}
	params := pc.ConnConfig.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = "kub-demo-" + schema.Name
	}
	// A 201 means the record is on disk, whatever the database or role default says.
	params["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, err
	}
	return &DB{Pool: pool, Timeout: cfg.Timeout, schema: schema, log: log}, nil
}

// Endpoint is where the pool connects, for logs: user@host:port/database, no password.
func (d *DB) Endpoint() string {
	c := d.Pool.Config().ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// MaxConns is the pool's size.
func (d *DB) MaxConns() int32 { return d.Pool.Config().MaxConns }

// Migrate brings the schema up to date (replicas starting at once apply each migration
// once). The store serves only once it has.
func (d *DB) Migrate(ctx context.Context) error {
	err := d.migrate(ctx)
	d.mu.Lock()
	d.migrateErr = err
	d.mu.Unlock()
	if err == nil {
		d.migrated.Store(true)
	}
	return err
}

// WaitMigrated calls Migrate until it succeeds or ctx ends, every retryEvery: a replica may
// start before its database does. Until then Ready and Check fail.
func (d *DB) WaitMigrated(ctx context.Context, retryEvery time.Duration) {
	migrated := retry.Until(ctx, d.log, retryEvery, "database not ready yet: retrying", func(ctx context.Context) error {
		attempt, cancel := context.WithTimeout(ctx, 4*d.Timeout)
		defer cancel()
		return d.Migrate(attempt)
	}, "database", d.Endpoint())
	if migrated {
		d.log.Info("database schema up to date: ready", "database", d.Endpoint())
	}
}

// Ready fails, as a store that cannot be used now, until the schema is migrated.
func (d *DB) Ready() error {
	if d.migrated.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.migrateErr != nil {
		return Unavailable(fmt.Errorf("the schema is not migrated yet: %w", d.migrateErr))
	}
	return Unavailable(errors.New("the schema is not migrated yet"))
}

// Check reports whether the store can serve now: migrated, and the database answers.
// Readiness probes call it.
func (d *DB) Check(ctx context.Context) error {
	if err := d.Ready(); err != nil {
		return err
	}
	return Fail(d.Pool.Ping(ctx))
}

// Close closes the pool's connections.
func (d *DB) Close() { d.Pool.Close() }

// RegisterMetrics adds the pool's gauges and stored, the count the store's rows (name, help).
func (d *DB) RegisterMetrics(m *metrics.Registry, name, help string, stored func(context.Context) (int, error)) {
	m.GaugeFunc(name, help, func() float64 {
		n, err := stored(context.Background())
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	stat := d.Pool.Stat
	m.GaugeFunc("db_pool_max_connections", "Connections this process may open to the database (DB_MAX_CONNS).", func() float64 { return float64(stat().MaxConns()) })
	m.GaugeFunc("db_pool_acquired_connections", "Database connections in use now.", func() float64 { return float64(stat().AcquiredConns()) })
	m.GaugeFunc("db_pool_idle_connections", "Database connections open and idle now.", func() float64 { return float64(stat().IdleConns()) })
	m.GaugeFunc("db_pool_waited_acquires", "Times a call waited for a free database connection, since start.", func() float64 { return float64(stat().EmptyAcquireCount()) })
}

// migrate applies, in name order, the migrations the database has not had yet, each in a
// transaction of its own, under a session advisory lock. A process that dies holding the
// lock drops its connection, and with it the lock.
func (d *DB) migrate(ctx context.Context) error {
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", d.schema.Lock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", d.schema.Lock)

	table := pgx.Identifier{d.schema.Name + "_schema_migrations"}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	rows, _ := conn.Query(ctx, "SELECT version FROM "+table)
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	names, err := fs.Glob(d.schema.Migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if slices.Contains(applied, version) {
			continue
		}
		sql, err := fs.ReadFile(d.schema.Migrations, name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+table+" (version) VALUES ($1)", version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		d.log.Info("schema migration applied", "version", version)
	}
	return nil
}

// Fail maps the database's errors to the stores': a full disk is recordlog.ErrFull; no
// answer, a lost connection, a server shutting down, in recovery or out of connections, or a
// timeout is recordlog.ErrUnavailable (503: try again). Anything else is returned as it is
// (500).
func Fail(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "53100": // disk_full
			return &dbError{sentinel: recordlog.ErrFull, what: "the database's disk is full", err: err}
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),          // insufficient resources (too many connections…)
			strings.HasPrefix(pgErr.Code, "57P"),         // shutting down, cannot connect now (recovery)
			pgErr.Code == "57014",                        // query_canceled: a statement timeout
			pgErr.Code == "25006",                        // read_only_sql_transaction: a standby, after a failover
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return Unavailable(err)
		}
		return err
	}
	// Not an answer from the server: no connection, a connection lost, or a timeout.
	return Unavailable(err)
}

// Unavailable is err as a store that cannot be used now (recordlog.ErrUnavailable).
func Unavailable(err error) error {
	return &dbError{sentinel: recordlog.ErrUnavailable, what: "the database cannot be used now", err: err}
}

// dbError is one of the stores' errors (ErrUnavailable, ErrFull) in the words of the
// database: theirs speak of a file.
type dbError struct {
	sentinel error
	what     string
	err      error
}

func (e *dbError) Error() string   { return e.what + ": " + e.err.Error() }
func (e *dbError) Unwrap() []error { return []error{e.sentinel, e.err} }

// Env holds the settings of a store that may live in PostgreSQL; embed it in a service's
// config.
type Env struct {
	DatabaseURL string        `envconfig:"DATABASE_URL" desc:"PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require): keep this service's data there instead of in its file; empty: the file"`
	DBMaxConns  int32         `envconfig:"DB_MAX_CONNS" default:"4" desc:"with DATABASE_URL: connections this process opens to the database at most"`
	DBTimeout   time.Duration `envconfig:"DB_TIMEOUT" default:"5s" desc:"with DATABASE_URL: longest wait for one database call, a free connection included, before answering 503"`
}

// Database is how the store reaches DATABASE_URL.
func (e Env) Database() Config {
	return Config{URL: e.DatabaseURL, MaxConns: e.DBMaxConns, Timeout: e.DBTimeout}
}

// ValidateDatabase checks the settings.
func (e Env) ValidateDatabase() error {
	if e.DBMaxConns < 1 || e.DBTimeout <= 0 {
		return fmt.Errorf("DB_MAX_CONNS=%d must be at least 1 and DB_TIMEOUT=%s positive", e.DBMaxConns, e.DBTimeout)
	}
	return nil
}
