// Package pgstore keeps tasks in PostgreSQL, for deployments that outgrow one tasks pod: any
// number of replicas share one database, and none keeps the tasks in memory. It answers as
// the file store (package filestore) does: the same views of the list, in stored order, the same
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
	"embed"
	"errors"
	"log/slog"
	"sync"

	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
	"github.com/kub-demo/kub-demo/storage/pgdb"
)

// Store is the tasks table of one database: its pool, schema and readiness (pgdb.DB), and
// the committer of its appends.
type Store struct {
	*pgdb.DB
	opts tasks.Options
	log  *slog.Logger

	queue   chan *appendRequest // to commitLoop
	closing chan struct{}
	stopped chan struct{}
	closed  sync.Once
}

var _ tasks.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// schema is the tasks tables'. Its advisory lock key spells "kub-task".
var schema = pgdb.Schema{Name: "tasks", Migrations: migrations, Lock: 0x6b75622d7461736b}

// Open prepares the pool; it connects only when first used (see pgdb.DB.WaitMigrated).
func Open(cfg pgdb.Config, opts tasks.Options, log *slog.Logger) (*Store, error) {
	db, err := pgdb.Open(cfg, schema, log)
	if err != nil {
		return nil, err
	}
	s := &Store{DB: db, opts: opts, log: log,
		queue: make(chan *appendRequest, maxBatch), closing: make(chan struct{}), stopped: make(chan struct{})}
	go s.commitLoop()
	return s, nil
}

// Close lets the batch being committed finish, refuses appends from then on, and closes the
// pool's connections.
func (s *Store) Close() {
	s.closed.Do(func() {
		close(s.closing)
		<-s.stopped
		s.DB.Close()
	})
}

// Append stores t as owner's, committed (on the database's disk) before it returns. Errors:
// tasks.ErrTooLarge, tasks.ErrQuota, tasks.ErrFull (the database's disk is full),
// tasks.ErrUnavailable (no answer within the timeout: the task may still be stored), or the
// database's.
func (s *Store) Append(ctx context.Context, owner string, t tasks.Task) error {
	record, answer, err := tasks.Encode(t, owner)
	if err != nil {
		return err
	}
	size := len(record)
	if err := s.opts.CheckQuota(0, 0, int64(size)); err != nil { // too large for any user
		return err
	}
	if err := s.Ready(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	r := &appendRequest{owner: owner, size: int64(size), answer: string(answer), done: make(chan error, 1)}
	select {
	case s.queue <- r:
	case <-s.closing:
		return pgdb.Unavailable(errors.New("the store is closed"))
	case <-ctx.Done():
		return pgdb.Fail(ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-s.stopped:
		select {
		case err := <-r.done:
			return err
		default:
			return pgdb.Unavailable(errors.New("the store is closed"))
		}
	case <-ctx.Done():
		return pgdb.Fail(ctx.Err())
	}
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
	if err := s.Ready(); err != nil {
		return nil, 0, err
	}
	offset, limit = max(offset, 0), max(limit, 0)
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	query, args := viewSQL, []any{viewer, int64(offset), int64(limit)}
	if s.opts.Shared {
		query, args = sharedSQL, []any{int64(offset), int64(limit)}
	}
	rows, err := s.Pool.Query(ctx, query, args...)
	if err != nil {
		return nil, 0, pgdb.Fail(err)
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
		return nil, 0, pgdb.Fail(err)
	}
	if len(list) == 0 {
		return nil, int(all), nil
	}
	return [][]byte{list}, int(all), nil
}

// Count is how many tasks the database holds.
func (s *Store) Count(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var n int64
	err := s.Pool.QueryRow(ctx, "SELECT coalesce(sum(tasks), 0)::bigint FROM task_owners").Scan(&n)
	return int(n), pgdb.Fail(err)
}
