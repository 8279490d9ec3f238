package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kub-demo/kub-demo/storage/pgdb"
)

// Appends are committed by one goroutine per Store, in batches: every append waiting when a
// transaction starts goes into it, so that concurrent appends share one commit (one WAL
// flush), as the file store's share one fsync. It matters most for one user's appends, which
// could otherwise only be committed one after another: their owner's row is locked from the
// moment a task takes its place until the commit.

// maxBatch bounds how many appends one transaction stores.
const maxBatch = 256

type appendRequest struct {
	owner  string
	size   int64  // the task as a tasks.txt record, for the bytes quota
	answer string // the task as GET /tasks answers it
	done   chan error
}

// The statements of one batch, in one transaction:
//
//	ensureOwnersSQL  gives every owner of the batch a row, if they have none yet;
//	lockOwnersSQL    locks those rows, in a fixed order (no deadlock between replicas), and
//	                 reads their counts: each task's quota and place follow from them;
//	insertTasksSQL   stores the tasks the quotas let in, in the batch's order;
//	updateOwnersSQL  writes the owners' new counts.
const (
	ensureOwnersSQL = `INSERT INTO task_owners (owner, tasks, bytes) SELECT o, 0, 0 FROM unnest($1::text[]) AS o ON CONFLICT (owner) DO NOTHING`
	lockOwnersSQL   = `SELECT owner, tasks, bytes FROM task_owners WHERE owner = ANY($1::text[]) ORDER BY owner FOR UPDATE`
	insertTasksSQL  = `
INSERT INTO tasks (owner, pos, task)
SELECT t.owner, t.pos, t.task::json
FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS t(owner, pos, task, n)
ORDER BY t.n`
	updateOwnersSQL = `
UPDATE task_owners o SET tasks = u.tasks, bytes = u.bytes
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(owner, tasks, bytes)
WHERE o.owner = u.owner`
)

// commitLoop is the single writer: it takes every append waiting (up to maxBatch) and
// commits them together, until Close.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	for {
		var first *appendRequest
		select {
		case first = <-s.queue:
		case <-s.closing:
			for {
				select {
				case r := <-s.queue:
					r.done <- pgdb.Unavailable(errors.New("the store is closed"))
				default:
					return
				}
			}
		}
		batch := []*appendRequest{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		for i, err := range s.commit(batch) {
			batch[i].done <- err
		}
	}
}

// usage is an owner's count, as locked in the batch's transaction.
type usage struct {
	tasks, bytes int64
}

// commit stores batch in one transaction and returns each append's outcome: nil, ErrQuota,
// or the transaction's error for every append when it failed.
func (s *Store) commit(batch []*appendRequest) []error {
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	owners := make([]string, 0, len(batch))
	for _, r := range batch {
		owners = append(owners, r.owner)
	}
	slices.Sort(owners)
	owners = slices.Compact(owners)

	results := make([]error, len(batch))
	began := time.Now()
	var wrote time.Duration // statements sent and answered; the rest is the commit (WAL flush)
	stored := 0
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		defer func() { wrote = time.Since(began) }()
		if _, err := tx.Exec(ctx, ensureOwnersSQL, owners); err != nil {
			return err
		}
		counts := make(map[string]*usage, len(owners))
		var owner string
		var u usage
		rows, _ := tx.Query(ctx, lockOwnersSQL, owners)
		if _, err := pgx.ForEachRow(rows, []any{&owner, &u.tasks, &u.bytes}, func() error {
			counts[owner] = &usage{u.tasks, u.bytes}
			return nil
		}); err != nil {
			return err
		}
		var cols struct {
			owners, answers []string
			places          []int64
		}
		for i, r := range batch {
			u := counts[r.owner]
			if u == nil {
				return fmt.Errorf("pgstore: no row for owner %q after inserting it", r.owner)
			}
			if results[i] = s.opts.CheckQuota(u.tasks, u.bytes, r.size); results[i] != nil {
				continue
			}
			cols.owners, cols.answers, cols.places = append(cols.owners, r.owner), append(cols.answers, r.answer), append(cols.places, u.tasks)
			u.tasks++
			u.bytes += r.size
		}
		if len(cols.owners) == 0 {
			return nil
		}
		var updated struct {
			owners       []string
			tasks, bytes []int64
		}
		for _, o := range owners {
			updated.owners, updated.tasks, updated.bytes = append(updated.owners, o), append(updated.tasks, counts[o].tasks), append(updated.bytes, counts[o].bytes)
		}
		writes := &pgx.Batch{}
		writes.Queue(insertTasksSQL, cols.owners, cols.places, cols.answers)
		writes.Queue(updateOwnersSQL, updated.owners, updated.tasks, updated.bytes)
		stored = len(cols.owners)
		return tx.SendBatch(ctx, writes).Close()
	})
	if s.opts.OnCommit != nil && stored > 0 {
		s.opts.OnCommit(stored, wrote, time.Since(began)-wrote, err)
	}
	if err != nil {
		err = pgdb.Fail(err)
		for i := range results {
			results[i] = err
		}
	}
	return results
}
