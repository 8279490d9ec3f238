// Package pgusers keeps accounts in PostgreSQL, for deployments that outgrow one users pod:
// any number of replicas share one database, and an email has one account whichever replica
// signs it up (a unique index decides). It is an accounts.Users, as the file store is.
package pgusers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
)

// Config is how to reach the database.
type Config struct {
	// URL is DATABASE_URL: postgres://user:password@host:port/database?sslmode=…
	URL string
	// MaxConns bounds the pool: the most statements this process runs at once.
	MaxConns int32
	// Timeout bounds one call, the wait for a connection included: past it the call fails
	// with accounts.ErrUnavailable.
	Timeout time.Duration
}

// Store is the users table of one database.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	log     *slog.Logger

	migrated   atomic.Bool
	mu         sync.Mutex
	migrateErr error // why the last migration attempt failed
}

var _ accounts.Users = (*Store)(nil)

// Open prepares the pool; it connects only when first used (see Migrate).
func Open(cfg Config, log *slog.Logger) (*Store, error) {
	if cfg.MaxConns < 1 || cfg.Timeout <= 0 {
		return nil, errors.New("pgusers: MaxConns must be at least 1 and Timeout positive")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err) // pgx leaves the password out
	}
	pc.MaxConns = cfg.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > cfg.Timeout {
		pc.ConnConfig.ConnectTimeout = cfg.Timeout
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "kub-demo-users"
	}
	// A 201 means the account is on disk, whatever the database or role default says.
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, timeout: cfg.Timeout, log: log}, nil
}

// Endpoint is where the store connects, for logs: user@host:port/database, no password.
func (s *Store) Endpoint() string {
	c := s.pool.Config().ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// MaxConns is the pool's size.
func (s *Store) MaxConns() int32 { return s.pool.Config().MaxConns }

// PoolStat is the pool's state now, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

// Migrate brings the schema up to date (replicas starting at once apply each migration
// once). The store serves only once it has.
func (s *Store) Migrate(ctx context.Context) error {
	err := migrate(ctx, s.pool, s.log)
	s.mu.Lock()
	s.migrateErr = err
	s.mu.Unlock()
	if err == nil {
		s.migrated.Store(true)
	}
	return err
}

// WaitMigrated calls Migrate until it succeeds or ctx ends, every retryEvery: a replica may
// start before its database does. Until then the store answers ErrUnavailable.
func (s *Store) WaitMigrated(ctx context.Context, retryEvery time.Duration) {
	lastErr := ""
	for {
		attempt, cancel := context.WithTimeout(ctx, 4*s.timeout)
		err := s.Migrate(attempt)
		cancel()
		if err == nil {
			s.log.Info("database schema up to date: ready", "database", s.Endpoint())
			return
		}
		if ctx.Err() != nil {
			return
		}
		if err.Error() != lastErr { // once per different reason, not once per try
			lastErr = err.Error()
			s.log.Warn("database not ready yet: retrying", "database", s.Endpoint(), "error", lastErr, "retryEvery", retryEvery.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryEvery):
		}
	}
}

func (s *Store) ready() error {
	if s.migrated.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrateErr != nil {
		return unavailable(fmt.Errorf("the schema is not migrated yet: %w", s.migrateErr))
	}
	return unavailable(errors.New("the schema is not migrated yet"))
}

// Check reports whether the store can serve now: migrated, and the database answers.
func (s *Store) Check(ctx context.Context) error {
	if err := s.ready(); err != nil {
		return err
	}
	return fail(s.pool.Ping(ctx))
}

// Close closes the pool's connections.
func (s *Store) Close() { s.pool.Close() }

// Create stores u, committed before it returns, unless an account has its email (ErrExists).
func (s *Store) Create(ctx context.Context, u accounts.User) error {
	if err := s.ready(); err != nil {
		return err
	}
	if strings.ContainsRune(u.Email, 0) {
		// PostgreSQL's text cannot hold it, and no address has one.
		return errors.New("pgusers: an email with a NUL character cannot be stored")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (email) DO NOTHING`, u.ID, u.Email, u.PasswordHash, u.CreatedAt)
	if err != nil {
		return fail(err)
	}
	if tag.RowsAffected() == 0 {
		return accounts.ErrExists
	}
	return nil
}

// ByEmail finds the user with a normalised email.
func (s *Store) ByEmail(ctx context.Context, email string) (accounts.User, bool, error) {
	if err := s.ready(); err != nil {
		return accounts.User{}, false, err
	}
	if strings.ContainsRune(email, 0) {
		return accounts.User{}, false, nil // no stored email has one
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var u accounts.User
	err := s.pool.QueryRow(ctx, "SELECT id, email, password_hash, created_at FROM users WHERE email = $1", email).
		Scan(&u.ID, &u.Email, &u.PasswordHash, &u.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return accounts.User{}, false, nil
	case err != nil:
		return accounts.User{}, false, fail(err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, true, nil
}

// Count is how many users the database holds.
func (s *Store) Count(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n)
	return int(n), fail(err)
}

// Imported is what Import did.
type Imported struct {
	Read    int // users read from the file (each email's first)
	Added   int // users stored by this import
	Present int // users whose email (or id) the database had already
}

// Import adds the users of the users.jsonl at path to the database (accounts.ReadFile reads
// it as the file store does), in file order. An email that has an account keeps it, so
// importing a file again adds only the users that are not there yet.
func (s *Store) Import(ctx context.Context, path string) (Imported, error) {
	var result Imported
	users, err := accounts.ReadFile(path, s.log)
	if err != nil {
		return result, err
	}
	if err := s.Migrate(ctx); err != nil {
		return result, err
	}
	result.Read = len(users)
	for batch := range slices.Chunk(users, 1000) {
		var cols struct {
			ids, emails, hashes []string
			created             []time.Time
		}
		for _, u := range batch {
			if strings.ContainsRune(u.Email, 0) {
				s.log.Warn("user skipped: an email with a NUL character cannot be stored", "id", u.ID)
				continue
			}
			cols.ids, cols.emails, cols.hashes = append(cols.ids, u.ID), append(cols.emails, u.Email), append(cols.hashes, u.PasswordHash)
			cols.created = append(cols.created, u.CreatedAt)
		}
		tag, err := s.pool.Exec(ctx, `
			INSERT INTO users (id, email, password_hash, created_at)
			SELECT u.id, u.email, u.hash, u.created
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS u(id, email, hash, created, n)
			ORDER BY u.n
			ON CONFLICT DO NOTHING`, cols.ids, cols.emails, cols.hashes, cols.created)
		if err != nil {
			return result, fmt.Errorf("import into the database: %w", fail(err))
		}
		result.Added += int(tag.RowsAffected())
		result.Present += len(batch) - int(tag.RowsAffected())
	}
	return result, nil
}

// fail maps the database's errors to accounts': a full disk is accounts.ErrFull; no answer, a lost connection, a server
// shutting down, in recovery or out of connections, or a timeout is accounts.ErrUnavailable
// (503: try again). Anything else is returned as it is (500).
func fail(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "53100": // disk_full
			return &dbError{sentinel: accounts.ErrFull, what: "the database's disk is full", err: err}
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),          // insufficient resources (too many connections…)
			strings.HasPrefix(pgErr.Code, "57P"),         // shutting down, cannot connect now (recovery)
			pgErr.Code == "57014",                        // query_canceled: a statement timeout
			pgErr.Code == "25006",                        // read_only_sql_transaction: a standby, after a failover
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return unavailable(err)
		}
		return err
	}
	// Not an answer from the server: no connection, a connection lost, or a timeout.
	return unavailable(err)
}

// dbError is one of accounts' errors (ErrUnavailable, ErrFull) in the words of the database:
// theirs speak of a file.
type dbError struct {
	sentinel error
	what     string
	err      error
}

func (e *dbError) Error() string   { return e.what + ": " + e.err.Error() }
func (e *dbError) Unwrap() []error { return []error{e.sentinel, e.err} }

func unavailable(err error) error {
	return &dbError{sentinel: accounts.ErrUnavailable, what: "the database cannot be used now", err: err}
}
