// Package tasks is what a task is and what every task store does: the Store interface that
// the file (package filestore, tasks.txt) and PostgreSQL (package pgstore) implement, their
// errors and options, and the record format of tasks.txt, which both count quotas by.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

// Store keeps tasks; *filestore.Store (tasks.txt) and *pgstore.Store (PostgreSQL) are two.
type Store interface {
	// Append stores t as owner's, durably before it returns. Errors: ErrTooLarge, ErrQuota,
	// ErrFull, ErrUnavailable, or any other failure.
	Append(ctx context.Context, owner string, t Task) error
	// Page returns the tasks viewer may see, offset to offset+limit, as slices that together
	// are the JSON elements of an array (no brackets), and how many viewer may see in all.
	Page(ctx context.Context, viewer string, offset, limit int) (parts [][]byte, total int, err error)
}

// MaxRecordBytes bounds one stored record: what a task takes once encoded (a control
// character takes six bytes), not its characters. A longer one is refused with ErrTooLarge.
const MaxRecordBytes = 16 << 10

var (
	// ErrTooLarge: the task takes more than MaxRecordBytes once stored.
	ErrTooLarge = recordlog.ErrTooLarge
	// ErrFull: the store is at its size limit (Options.MaxBytes).
	ErrFull = recordlog.ErrFull
	// ErrQuota: the user has as many tasks, or bytes of them, as a user may.
	ErrQuota = errors.New("the user's task quota is used up")
	// ErrUnavailable: the store (the file, or the database) cannot be used now (see
	// recordlog.ErrUnavailable).
	ErrUnavailable = recordlog.ErrUnavailable
)

// Options configure a task store, the file or the database.
type Options struct {
	// Shared gives every user every task: the course's one shared list.
	Shared bool
	// MaxTasksPerUser and MaxBytesPerUser are each user's quota (0: none).
	MaxTasksPerUser int
	MaxBytesPerUser int64
	// MaxBytes bounds tasks.txt (0: none; the file store only). The tasks are kept in memory: the bound keeps the
	// file loadable in the memory the process has.
	MaxBytes int64
	// OnCommit, when not nil, is told of every batch written (see recordlog.Options).
	OnCommit func(records int, write, sync time.Duration, err error)
}

// CheckQuota says whether a user who has tasks tasks taking bytes bytes (as records) may
// store one more of size bytes. Errors: a *QuotaError. Every store answers by it.
func (o Options) CheckQuota(tasks, bytes, size int64) error {
	if q := o.MaxTasksPerUser; q > 0 && tasks >= int64(q) {
		return &QuotaError{Reached: fmt.Sprintf("%d tasks, the most a user may have", q)}
	}
	if q := o.MaxBytesPerUser; q > 0 && bytes+size > q {
		return &QuotaError{Reached: fmt.Sprintf("%d bytes, the most a user's tasks may take", q)}
	}
	return nil
}

// QuotaError is ErrQuota with the limit the user reached, for the answer to say.
type QuotaError struct{ Reached string }

func (e *QuotaError) Error() string { return ErrQuota.Error() + ": " + e.Reached }
func (e *QuotaError) Unwrap() error { return ErrQuota }

// Encode returns t, owned by owner, as its tasks.txt record (whose size the quotas count) and
// as GET /tasks answers it (the original's res.json bytes). Errors: ErrTooLarge, or the
// encoding's. Every store encodes by it.
func Encode(t Task, owner string) (record, answer []byte, err error) {
	record, err = EncodeRecord(t, owner)
	if err != nil {
		return nil, nil, fmt.Errorf("encode task: %w", err)
	}
	if len(record) > MaxRecordBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(record), MaxRecordBytes)
	}
	answer, err = web.Marshal(t)
	if err != nil {
		return nil, nil, fmt.Errorf("encode task: %w", err)
	}
	return record, answer, nil
}
