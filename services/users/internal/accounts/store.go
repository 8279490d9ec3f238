package accounts

import (
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/platform/recordlog"
)

// FileName is the users file inside USERS_FOLDER: one JSON object per line.
const FileName = "users.jsonl"

// User is one account as stored. PasswordHash is a bcrypt hash made by auth.
type User struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"passwordHash"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Store keeps users in an append-only file and an index by email in memory.
type Store struct {
	file *recordlog.Log

	mu      sync.RWMutex
	byEmail map[string]User
}

// OpenStore opens (or creates) the users file in folder. onCommit, when not nil, is told of
// every write (see recordlog.Options).
func OpenStore(folder string, log *slog.Logger, onCommit func(records int, write, sync time.Duration, err error)) (*Store, error) {
	s := &Store{byEmail: make(map[string]User)}
	file, err := recordlog.Open(filepath.Join(folder, FileName), recordlog.Options{
		Delimiter: []byte("\n"), Apply: s.apply, Log: log, OnCommit: onCommit,
	})
	if err != nil {
		return nil, err
	}
	s.file = file
	return s, nil
}

func (s *Store) apply(record []byte) error {
	var u User
	if err := json.Unmarshal(record, &u); err != nil {
		return err
	}
	if u.Email == "" || u.ID == "" {
		return errors.New("user record without an email or id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.byEmail[u.Email]; !taken {
		s.byEmail[u.Email] = u
	}
	return nil
}

// Create stores u, on disk before it returns, unless its email is taken (ErrExists), by
// this process or by another one writing the same file.
func (s *Store) Create(u User) error {
	record, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.file.Append(record, func() error {
		if _, found := s.lookup(u.Email); found {
			return ErrExists
		}
		return nil
	})
}

// ByEmail finds the user with a normalised email, including users other processes created.
func (s *Store) ByEmail(email string) (User, bool, error) {
	if err := s.file.Refresh(); err != nil {
		return User{}, false, err
	}
	u, found := s.lookup(email)
	return u, found, nil
}

func (s *Store) lookup(email string) (User, bool) {
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

// Close closes the file.
func (s *Store) Close() error { return s.file.Close() }
