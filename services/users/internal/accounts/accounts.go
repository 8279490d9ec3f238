// Package accounts signs users up and logs them in: users are kept in a Store, a file
// (package filestore) or a database (package pgstore), passwords are hashed and tokens issued
// by the auth service.
package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/retry"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

var (
	// ErrExists: signup of an email that already has an account.
	ErrExists = errors.New("a user with this email exists")
	// ErrBadCredentials: login with an unknown email or a wrong password (the same error for both).
	ErrBadCredentials = errors.New("invalid email or password")
	// ErrUnavailable: the user store cannot be used now (the file, or the database).
	ErrUnavailable = recordlog.ErrUnavailable
	// ErrFull: the user store is at its size limit.
	ErrFull = recordlog.ErrFull
)

// User is one account as stored. PasswordHash is a bcrypt hash made by auth.
type User struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"passwordHash"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Store is where accounts are kept: *filestore.Store (users.jsonl) or *pgstore.Store
// (PostgreSQL). Emails are normalised (NormalizeEmail) before they get here.
type Store interface {
	// Create stores u, durably before it returns. Errors: ErrExists (an account has its
	// email, made by this process or any other), ErrFull, ErrUnavailable, or the store's.
	Create(ctx context.Context, u User) error
	// ByEmail finds the user with email, including those other processes created.
	ByEmail(ctx context.Context, email string) (User, bool, error)
}

// Auth is what accounts needs of the auth service; *authapi.Client is one.
type Auth interface {
	HashPassword(ctx context.Context, password string) (string, error)
	IssueToken(ctx context.Context, password, hashedPassword, uid string) (string, error)
}

var _ Auth = (*authapi.Client)(nil)

// Credentials are an email and a password, as a client sends them.
type Credentials struct {
	Email    string
	Password string
}

// ParseDemoUser reads DEMO_USER ("email:password"); empty means no demo user.
func ParseDemoUser(setting string) (*Credentials, error) {
	if setting == "" {
		return nil, nil
	}
	email, password, ok := strings.Cut(setting, ":")
	if !ok || NormalizeEmail(email) == "" || password == "" {
		return nil, errors.New(`DEMO_USER must be "email:password", or empty to switch the demo user off`)
	}
	return &Credentials{Email: NormalizeEmail(email), Password: password}, nil
}

// NormalizeEmail makes the form emails are stored and looked up in: A@X.com and a@x.com are one user.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// Accounts signs up and logs in.
type Accounts struct {
	store Store
	auth  Auth
	log   *slog.Logger

	demo      *Credentials
	demoMu    sync.Mutex  // one creation of the demo user at a time
	demoReady atomic.Bool // the demo user exists
}

// New returns Accounts over store and auth; demo, when not nil, is created on first need.
func New(store Store, auth Auth, demo *Credentials, log *slog.Logger) *Accounts {
	return &Accounts{store: store, auth: auth, demo: demo, log: log}
}

// SignUp creates an account. Errors: ErrExists, ErrUnavailable (the store), ErrFull,
// authapi.ErrUnavailable (auth), or internal ones.
func (a *Accounts) SignUp(ctx context.Context, c Credentials) error {
	email := NormalizeEmail(c.Email)
	if err := a.ensureDemoUser(ctx, email); err != nil {
		return err
	}
	if _, found, err := a.store.ByEmail(ctx, email); err != nil {
		return err
	} else if found {
		return ErrExists
	}
	return a.create(ctx, email, c.Password)
}

// create hashes password through auth and stores the account.
func (a *Accounts) create(ctx context.Context, email, password string) error {
	hash, err := a.auth.HashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return a.store.Create(ctx, User{ID: rand.Text(), Email: email, PasswordHash: hash, CreatedAt: time.Now().UTC()})
}

// LogIn returns a token for the account. Errors: ErrBadCredentials, ErrUnavailable (the
// store), authapi.ErrUnavailable (auth).
func (a *Accounts) LogIn(ctx context.Context, c Credentials) (string, error) {
	email := NormalizeEmail(c.Email)
	if err := a.ensureDemoUser(ctx, email); err != nil {
		return "", err
	}
	user, found, err := a.store.ByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	if !found {
		// Auth still compares the password against a dummy hash, so an unknown email takes as
		// long to refuse as a wrong password and timing does not reveal who has an account.
		user = User{ID: "unknown"}
	}
	token, err := a.auth.IssueToken(ctx, c.Password, user.PasswordHash, user.ID)
	if errors.Is(err, authapi.ErrRejected) {
		return "", ErrBadCredentials
	}
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return token, nil
}

// DemoReady reports whether the demo user exists (always, when there is none).
func (a *Accounts) DemoReady() bool { return a.demo == nil || a.demoReady.Load() }

// CreateDemoUser creates the demo user, when there is one and no request has yet, trying
// again every retryEvery until that works or ctx ends. Call it once auth answers.
func (a *Accounts) CreateDemoUser(ctx context.Context, retryEvery time.Duration) {
	if a.demo == nil {
		return
	}
	created := retry.Until(ctx, a.log, retryEvery, "the demo user could not be created yet: trying again", func(ctx context.Context) error {
		return a.ensureDemoUser(ctx, a.demo.Email)
	})
	if created {
		a.log.Info("demo user ready", "email", a.demo.Email)
	}
}

// ensureDemoUser creates the demo user, once, when email is the demo user's.
func (a *Accounts) ensureDemoUser(ctx context.Context, email string) error {
	if a.demo == nil || email != a.demo.Email {
		return nil
	}
	a.demoMu.Lock()
	defer a.demoMu.Unlock()
	if a.demoReady.Load() {
		return nil
	}
	if _, found, err := a.store.ByEmail(ctx, email); err != nil {
		return err
	} else if !found {
		if err := a.create(ctx, email, a.demo.Password); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
	}
	a.demoReady.Store(true)
	return nil
}
