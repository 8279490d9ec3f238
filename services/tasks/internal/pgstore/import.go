package pgstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
	"github.com/kub-demo/kub-demo/storage/pgdb"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

// Imported is what Import did.
type Imported struct {
	Read    int // records read from the file
	Added   int // tasks stored by this import
	Present int // tasks an earlier import of the same records had stored
	Skipped int // records that are no task (warned about in the log)
}

// importBatch is how many records one transaction of Import stores.
const importBatch = 1000

// importLock serialises imports (key "kub-demo tasks import"), so that two at once neither
// miss each other's keys nor interleave their places.
const importLock int64 = 0x6b75622d696d7074

// Import adds the tasks of the tasks.txt at path to the database, with their owners, in file
// order, after the tasks already there. It reads the file as the file store does (package
// recordlog): it refuses a file that is not a tasks file, never changes it, and skips a
// damaged record with a warning. Each task is keyed by its record's place in the file and
// digest, so importing the same file again, or again once it has grown, adds only what is
// not there yet. Quotas do not apply: the file's tasks are all kept.
func (s *Store) Import(ctx context.Context, path string) (Imported, error) {
	var result Imported
	if err := s.Migrate(ctx); err != nil {
		return result, err
	}
	var batch []importRecord
	var failed error
	apply := func(record []byte) error {
		if failed != nil {
			return nil // the import has failed: the rest is not read into the database
		}
		result.Read++
		t, owner, err := tasks.DecodeRecord(record)
		if err == nil && strings.ContainsRune(owner, 0) {
			err = errors.New("an owner with a NUL character")
		}
		if err != nil {
			result.Skipped++
			return err
		}
		encoded, answer, err := tasks.Encode(t, owner)
		size := len(encoded)
		if err != nil {
			result.Skipped++
			return err
		}
		digest := sha256.Sum256(record)
		batch = append(batch, importRecord{key: fmt.Sprintf("%d:%x", result.Read, digest[:8]), owner: owner, size: size, answer: string(answer)})
		if len(batch) == importBatch {
			failed = s.importBatch(ctx, batch, &result)
			batch = batch[:0]
		}
		return nil
	}
	file, err := recordlog.Open(path, recordlog.Options{
		Delimiter: tasks.Delimiter, Apply: apply, Log: s.log, MaxRecordBytes: tasks.MaxRecordBytes, Existing: true,
	})
	if err != nil {
		return result, err
	}
	file.Close()
	if failed == nil && len(batch) > 0 {
		failed = s.importBatch(ctx, batch, &result)
	}
	return result, failed
}

type importRecord struct {
	key    string
	owner  string
	size   int
	answer string
}

// importBatch stores the records of batch not stored yet, in one transaction, and counts
// them in result once it is committed.
func (s *Store) importBatch(ctx context.Context, batch []importRecord, result *Imported) error {
	var added, present int
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		added, present = 0, 0
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", importLock); err != nil {
			return err
		}
		keys := make([]string, len(batch))
		for i, r := range batch {
			keys[i] = r.key
		}
		rows, _ := tx.Query(ctx, "SELECT import_key FROM tasks WHERE import_key = ANY($1)", keys)
		stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		there := make(map[string]bool, len(stored))
		for _, key := range stored {
			there[key] = true
		}
		fresh := slices.DeleteFunc(slices.Clone(batch), func(r importRecord) bool { return there[r.key] })
		present = len(batch) - len(fresh)
		if len(fresh) == 0 {
			return nil
		}

		// Count the batch against each owner's row, then give each task the next place.
		counts, bytes := map[string]int64{}, map[string]int64{}
		for _, r := range fresh {
			counts[r.owner]++
			bytes[r.owner] += int64(r.size)
		}
		var owners []string
		var ownerCounts, ownerBytes []int64
		for _, o := range slices.Sorted(maps.Keys(counts)) {
			owners, ownerCounts, ownerBytes = append(owners, o), append(ownerCounts, counts[o]), append(ownerBytes, bytes[o])
		}
		rows, _ = tx.Query(ctx, `
			INSERT INTO task_owners AS o (owner, tasks, bytes)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
			ON CONFLICT (owner) DO UPDATE SET tasks = o.tasks + excluded.tasks, bytes = o.bytes + excluded.bytes
			RETURNING o.owner, o.tasks`, owners, ownerCounts, ownerBytes)
		next := map[string]int64{}
		var owner string
		var tasks int64
		_, err = pgx.ForEachRow(rows, []any{&owner, &tasks}, func() error {
			next[owner] = tasks - counts[owner] // the first new task's place
			return nil
		})
		if err != nil {
			return err
		}
		cols := struct {
			owners, answers, keys []string
			places                []int64
		}{}
		for _, r := range fresh {
			cols.owners, cols.answers, cols.keys = append(cols.owners, r.owner), append(cols.answers, r.answer), append(cols.keys, r.key)
			cols.places = append(cols.places, next[r.owner])
			next[r.owner]++
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO tasks (owner, pos, task, import_key)
			SELECT r.owner, r.pos, r.task::json, r.key
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS r(owner, pos, task, key, n)
			ORDER BY r.n`, cols.owners, cols.places, cols.answers, cols.keys)
		if err != nil {
			return err
		}
		added = len(fresh)
		return nil
	})
	if err != nil {
		return fmt.Errorf("import into the database: %w", pgdb.Fail(err))
	}
	result.Added += added
	result.Present += present
	return nil
}
