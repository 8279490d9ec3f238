// Package filestore keeps accounts in $USERS_FOLDER/users.jsonl, one JSON object a line, and
// in memory an index of them by email.
package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

// FileName is the users file inside USERS_FOLDER: one JSON object per line.
const FileName = "users.jsonl"

// Store keeps users in an append-only file and an index by email in memory.
type Store struct {
	file *recordlog.Log
	log  *slog.Logger

	mu      sync.RWMutex
	byEmail map[string]accounts.User
}

var _ accounts.Store = (*Store)(nil)

// MaxRecordBytes bounds one line of users.jsonl: a user takes about 200 bytes.
const MaxRecordBytes = 16 << 10

// Open opens (or creates) the users file in folder. onCommit, when not nil, is told of
// every write (see recordlog.Options). maxBytes bounds the file (0: no bound).
func Open(folder string, log *slog.Logger, onCommit func(records int, write, sync time.Duration, err error), maxBytes int64) (*Store, error) {
	s := &Store{byEmail: make(map[string]accounts.User), log: log}
	file, err := recordlog.Open(filepath.Join(folder, FileName), recordlog.Options{
		Delimiter: []byte("\n"), Apply: s.apply, Reset: s.reset, Log: log, OnCommit: onCommit,
		MaxRecordBytes: MaxRecordBytes, MaxBytes: maxBytes, Recognize: isUserRecord,
	})
	if err != nil {
		return nil, err
	}
	s.file = file
	return s, nil
}

// apply reads one line into the index.
func (s *Store) apply(line []byte) error {
	users, err := usersOfLine(line, s.log)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		if _, taken := s.byEmail[u.Email]; !taken {
			s.byEmail[u.Email] = u
		}
	}
	return nil
}

// usersOfLine reads one line. A line is one user; a line that lost its newline holds two (or
// more) glued together, and each is kept; bytes that are no user are skipped, so that a
// damaged line costs only the user it damaged.
func usersOfLine(line []byte, log *slog.Logger) ([]accounts.User, error) {
	users, skipped := decodeUsers(line)
	if len(users) == 0 {
		return nil, errors.New("no user record in this line")
	}
	if skipped > 0 {
		log.Warn("part of a line of users.jsonl is not a user; the users in it were kept", "bytes", skipped, "users", len(users))
	}
	return users, nil
}

// isUserRecord reports whether a JSON object is a user: it has an id and an email.
func isUserRecord(object []byte) bool {
	var u accounts.User
	return json.Unmarshal(object, &u) == nil && u.ID != "" && u.Email != ""
}

// maxResyncs bounds how many times decodeUsers starts again after bytes that are no user.
const maxResyncs = 64

// decodeUsers reads the JSON objects in line one after another; where one does not read as a
// user, it starts again at the next '{'. It returns the users and how many bytes it skipped.
func decodeUsers(line []byte) (users []accounts.User, skipped int) {
	for rest, resyncs := line, 0; len(bytes.TrimSpace(rest)) > 0 && resyncs <= maxResyncs; {
		dec := json.NewDecoder(bytes.NewReader(rest))
		var u accounts.User
		if err := dec.Decode(&u); err == nil && u.Email != "" && u.ID != "" {
			users = append(users, u)
			rest = rest[dec.InputOffset():]
			continue
		}
		resyncs++
		next := bytes.IndexByte(rest[1:], '{')
		if next < 0 {
			return users, skipped + len(bytes.TrimSpace(rest))
		}
		skipped += next + 1
		rest = rest[next+1:]
	}
	return users, skipped
}

// reset forgets every user: the file is being read again from the start.
func (s *Store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.byEmail)
}

// Check reports whether the users file can be used now (readiness).
func (s *Store) Check() error { return s.file.Check() }

// Create stores u, on disk before it returns, unless its email is taken
// (accounts.ErrExists), by
// this process or by another one writing the same file.
func (s *Store) Create(_ context.Context, u accounts.User) error {
	record, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.file.AppendApplied(record, func() error {
		if _, found := s.lookup(u.Email); found {
			return accounts.ErrExists
		}
		return nil
	}, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.byEmail[u.Email] = u
	})
}

// ByEmail finds the user with a normalised email, including users other processes created.
func (s *Store) ByEmail(_ context.Context, email string) (accounts.User, bool, error) {
	if err := s.file.Refresh(); err != nil {
		return accounts.User{}, false, err
	}
	u, found := s.lookup(email)
	return u, found, nil
}

func (s *Store) lookup(email string) (accounts.User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, found := s.byEmail[email]
	return u, found
}

// Count is how many users the store holds.
func (s *Store) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byEmail)
}

// ReadFile reads the users of the users.jsonl at path as the file store does: it refuses a
// file that is not a users file, never creates or changes it, skips what is no user with a
// warning, and keeps the first user of each email. They come in file order.
func ReadFile(path string, log *slog.Logger) ([]accounts.User, error) {
	var users []accounts.User
	seen := map[string]bool{}
	file, err := recordlog.Open(path, recordlog.Options{
		Delimiter: []byte("\n"), Log: log, MaxRecordBytes: MaxRecordBytes, Existing: true,
		Apply: func(line []byte) error {
			found, err := usersOfLine(line, log)
			for _, u := range found {
				if !seen[u.Email] {
					seen[u.Email] = true
					users = append(users, u)
				}
			}
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	return users, file.Close()
}

// Close closes the file.
func (s *Store) Close() error { return s.file.Close() }
