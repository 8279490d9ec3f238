// Package pgstore keeps accounts in PostgreSQL, for deployments that outgrow one users pod:
// any number of replicas share one database, and an email has one account whichever replica
// signs it up (a unique index decides). It is an accounts.Store, as the file store is.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/filestore"
	"github.com/kub-demo/kub-demo/storage/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// schema is the users table's. Its advisory lock key spells "kub-user".
var schema = pgdb.Schema{Name: "users", Migrations: migrations, Lock: 0x6b75622d75736572}

// Store is the users table of one database: its pool, schema and readiness (pgdb.DB).
type Store struct {
	*pgdb.DB
	log *slog.Logger
}

var _ accounts.Store = (*Store)(nil)

// Open prepares the pool; it connects only when first used (see pgdb.DB.WaitMigrated).
func Open(cfg pgdb.Config, log *slog.Logger) (*Store, error) {
	db, err := pgdb.Open(cfg, schema, log)
	if err != nil {
		return nil, err
	}
	return &Store{DB: db, log: log}, nil
}

// Create stores u, committed before it returns, unless an account has its email (ErrExists).
func (s *Store) Create(ctx context.Context, u accounts.User) error {
	if err := s.Ready(); err != nil {
		return err
	}
	if strings.ContainsRune(u.Email, 0) {
		// PostgreSQL's text cannot hold it, and no address has one.
		return errors.New("pgusers: an email with a NUL character cannot be stored")
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	tag, err := s.Pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (email) DO NOTHING`, u.ID, u.Email, u.PasswordHash, u.CreatedAt)
	if err != nil {
		return pgdb.Fail(err)
	}
	if tag.RowsAffected() == 0 {
		return accounts.ErrExists
	}
	return nil
}

// ByEmail finds the user with a normalised email.
func (s *Store) ByEmail(ctx context.Context, email string) (accounts.User, bool, error) {
	if err := s.Ready(); err != nil {
		return accounts.User{}, false, err
	}
	if strings.ContainsRune(email, 0) {
		return accounts.User{}, false, nil // no stored email has one
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var u accounts.User
	err := s.Pool.QueryRow(ctx, "SELECT id, email, password_hash, created_at FROM users WHERE email = $1", email).
		Scan(&u.ID, &u.Email, &u.PasswordHash, &u.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return accounts.User{}, false, nil
	case err != nil:
		return accounts.User{}, false, pgdb.Fail(err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, true, nil
}

// Count is how many users the database holds.
func (s *Store) Count(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var n int64
	err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n)
	return int(n), pgdb.Fail(err)
}

// Imported is what Import did.
type Imported struct {
	Read    int // users read from the file (each email's first)
	Added   int // users stored by this import
	Present int // users whose email (or id) the database had already
	Skipped int // users that cannot be stored (warned about in the log)
}

// Import adds the users of the users.jsonl at path to the database (filestore.ReadFile reads
// it as the file store does), in file order. An email that has an account keeps it, so
// importing a file again adds only the users that are not there yet.
func (s *Store) Import(ctx context.Context, path string) (Imported, error) {
	var result Imported
	users, err := filestore.ReadFile(path, s.log)
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
				result.Skipped++
				continue
			}
			cols.ids, cols.emails, cols.hashes = append(cols.ids, u.ID), append(cols.emails, u.Email), append(cols.hashes, u.PasswordHash)
			cols.created = append(cols.created, u.CreatedAt)
		}
		tag, err := s.Pool.Exec(ctx, `
			INSERT INTO users (id, email, password_hash, created_at)
			SELECT u.id, u.email, u.hash, u.created
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS u(id, email, hash, created, n)
			ORDER BY u.n
			ON CONFLICT DO NOTHING`, cols.ids, cols.emails, cols.hashes, cols.created)
		if err != nil {
			return result, fmt.Errorf("import into the database: %w", pgdb.Fail(err))
		}
		result.Added += int(tag.RowsAffected())
		result.Present += len(cols.ids) - int(tag.RowsAffected())
	}
	return result, nil
}
