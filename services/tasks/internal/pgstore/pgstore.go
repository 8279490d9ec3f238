// Package pgstore keeps tasks in PostgreSQL, for deployments that outgrow one tasks pod: any
// number of replicas share one database, and none keeps the tasks in memory. It answers as
// the file store (package store) does: the same views of the list, in stored order, the same
// quotas and size limit of a task, and the same bytes in a list answer. Its quotas are exact
// even across replicas.
//
// Each owner has a row counting their tasks, updated in the transaction that stores a task:
// it holds the quota, and gives each task its place among its owner's (pos, with no gap), so
// that a page of a list is found through the index at any depth. Appends are committed in
// batches by one goroutine (commit.go): concurrent appends, one user's included, share a
// commit.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/store"
)

// Config is how to reach the database.
type Config struct {
	// URL is DATABASE_URL: postgres://user:password@host:port/database?sslmode=…
	URL string
	// MaxConns bounds the pool: the most statements this process runs at once.
	MaxConns int32
	// Timeout bounds one call, the wait for a connection included: past it the call fails
	// with store.ErrUnavailable.
	Timeout time.Duration
}

// Store is the tasks table of one database.
type Store struct {
	pool    *pgxpool.Pool
	opts    store.Options
	timeout time.Duration
	log     *slog.Logger

	migrated   atomic.Bool
	mu         sync.Mutex
	migrateErr error // why the last migration attempt failed

	queue   chan *appendRequest // to commitLoop
	closing chan struct{}
	stopped chan struct{}
	closed  sync.Once
}

// Open prepares the pool; it connects only when first used (see Migrate).
func Open(cfg Config, opts store.Options, log *slog.Logger) (*Store, error) {
	pool, err := newPool(cfg, "kub-demo-tasks")
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, opts: opts, timeout: cfg.Timeout, log: log,
		queue: make(chan *appendRequest, maxBatch), closing: make(chan struct{}), stopped: make(chan struct{})}
	go s.commitLoop()
	return s, nil
}

func newPool(cfg Config, application string) (*pgxpool.Pool, error) {
	if cfg.MaxConns < 1 || cfg.Timeout <= 0 {
		return nil, errors.New("pgstore: MaxConns must be at least 1 and Timeout positive")
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
		params["application_name"] = application
	}
	// A 201 means the task is on disk, whatever the database or role default says.
	params["synchronous_commit"] = "on"
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// Endpoint is where the store connects, for logs: user@host:port/database, no password.
func (s *Store) Endpoint() string { return endpoint(s.pool.Config()) }

func endpoint(pc *pgxpool.Config) string {
	c := pc.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// MaxConns is the pool's size.
func (s *Store) MaxConns() int32 { return s.pool.Config().MaxConns }

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
// start before its database does. Until then the store answers ErrUnavailable and Check
// fails.
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

// ready fails until the schema is migrated.
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
// Readiness probes call it.
func (s *Store) Check(ctx context.Context) error {
	if err := s.ready(); err != nil {
		return err
	}
	return fail(s.pool.Ping(ctx))
}

// Close lets the batch being committed finish, refuses appends from then on, and closes the
// pool's connections.
func (s *Store) Close() {
	s.closed.Do(func() {
		close(s.closing)
		<-s.stopped
		s.pool.Close()
	})
}

// Append stores t as owner's, committed (on the database's disk) before it returns. Errors:
// store.ErrTooLarge, store.ErrQuota, store.ErrFull (the database's disk is full),
// store.ErrUnavailable (no answer within the timeout: the task may still be stored), or the
// database's.
func (s *Store) Append(ctx context.Context, owner string, t store.Task) error {
	size, answer, err := encode(t, owner)
	if err != nil {
		return err
	}
	if q := s.opts.MaxBytesPerUser; q > 0 && int64(size) > q {
		return fmt.Errorf("%w: %d bytes, the most a user's tasks may take", store.ErrQuota, q)
	}
	if err := s.ready(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r := &appendRequest{owner: owner, size: int64(size), answer: string(answer), done: make(chan error, 1)}
	select {
	case s.queue <- r:
	case <-s.closing:
		return unavailable(errors.New("the store is closed"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-s.stopped:
		select {
		case err := <-r.done:
			return err
		default:
			return unavailable(errors.New("the store is closed"))
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// encode returns what t takes as a tasks.txt record (the quota counts that, as the file store
// does) and t as GET /tasks answers it.
func encode(t store.Task, owner string) (size int, answer []byte, err error) {
	record, err := store.EncodeRecord(t, owner)
	if err != nil {
		return 0, nil, fmt.Errorf("encode task: %w", err)
	}
	if len(record) > store.MaxRecordBytes {
		return 0, nil, fmt.Errorf("%w: %d bytes, the limit is %d", store.ErrTooLarge, len(record), store.MaxRecordBytes)
	}
	// As the file store encodes its answers (the original's res.json): the same bytes.
	answer, err = web.Marshal(t)
	return len(record), answer, err
}

// viewSQL is a page of what viewer sees: their tasks and those with no owner, merged in
// stored order, from place $2, at most $3; and how many in all (on every row, and on the one
// row with no task when the page is empty).
const viewSQL = `
SELECT v.total, p.task
FROM task_view_start($1, $2) v
LEFT JOIN LATERAL (
	SELECT u.id, u.task FROM (
		(SELECT t.id, t.task FROM tasks t
			WHERE t.owner = $1 AND $1 <> '' AND t.pos >= v.own_from ORDER BY t.pos LIMIT $3)
		UNION ALL
		(SELECT t.id, t.task FROM tasks t
			WHERE t.owner = '' AND t.pos >= v.unowned_from ORDER BY t.pos LIMIT $3)
	) u ORDER BY u.id LIMIT $3
) p ON true
ORDER BY p.id`

// sharedSQL is a page of every task (Options.Shared). Without a place that counts every
// task, the offset is counted through the primary key: a page costs more the deeper it is.
const sharedSQL = `
SELECT v.total, p.task
FROM (SELECT coalesce(sum(tasks), 0)::bigint AS total FROM task_owners) v
LEFT JOIN LATERAL (SELECT t.id, t.task FROM tasks t ORDER BY t.id OFFSET $1 LIMIT $2) p ON true
ORDER BY p.id`

// Page returns the tasks viewer may see, offset to offset+limit (fewer at the end), in
// stored order, as the elements of a JSON array with no brackets, and how many viewer may see
// in all. Every replica's tasks are there as soon as they are committed.
func (s *Store) Page(ctx context.Context, viewer string, offset, limit int) (parts [][]byte, total int, err error) {
	if err := s.ready(); err != nil {
		return nil, 0, err
	}
	offset, limit = max(offset, 0), max(limit, 0)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	query, args := viewSQL, []any{viewer, int64(offset), int64(limit)}
	if s.opts.Shared {
		query, args = sharedSQL, []any{int64(offset), int64(limit)}
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, 0, fail(err)
	}
	defer rows.Close()
	var list []byte
	var all int64
	for rows.Next() {
		if err := rows.Scan(&all, nil); err != nil {
			return nil, 0, err
		}
		task := rows.RawValues()[1] // json's text, as stored: the bytes the answer carries
		if task == nil {
			continue
		}
		if len(list) > 0 {
			list = append(list, ',')
		}
		list = append(list, task...)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fail(err)
	}
	if len(list) == 0 {
		return nil, int(all), nil
	}
	return [][]byte{list}, int(all), nil
}

// Count is how many tasks the database holds.
func (s *Store) Count(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT coalesce(sum(tasks), 0)::bigint FROM task_owners").Scan(&n)
	return int(n), fail(err)
}

// fail maps the database's errors to the store's: a full disk is store.ErrFull; no answer, a
// lost connection, a server shutting down, in recovery or out of connections, or a timeout
// is store.ErrUnavailable (503: try again). Anything else is returned as it is (500).
func fail(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "53100": // disk_full
			return &dbError{sentinel: store.ErrFull, what: "the database's disk is full", err: err}
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

// dbError is one of the store's errors (store.ErrUnavailable, store.ErrFull) in the words of
// the database: theirs speak of a file.
type dbError struct {
	sentinel error
	what     string
	err      error
}

func (e *dbError) Error() string   { return e.what + ": " + e.err.Error() }
func (e *dbError) Unwrap() []error { return []error{e.sentinel, e.err} }

func unavailable(err error) error {
	return &dbError{sentinel: store.ErrUnavailable, what: "the database cannot be used now", err: err}
}

// PoolStat is the pool's state now, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }
