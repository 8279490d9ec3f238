// Package password hashes and checks passwords with bcrypt.
package password

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// ErrTooLong is returned for passwords bcrypt cannot hash whole (over 72 bytes).
var ErrTooLong = bcrypt.ErrPasswordTooLong

var (
	// ErrBusy is returned at once when every worker is hashing and the queue is full: the
	// caller should answer 503 and the client try again, rather than wait in a line that
	// only grows.
	ErrBusy = errors.New("password hashing is at capacity")
	// ErrCostNotAccepted is returned, with no hashing, for a hash of a higher cost than this
	// Hasher's: its cost is the caller's choice, and bcrypt's time doubles with every step.
	ErrCostNotAccepted = errors.New("the hash's bcrypt cost is higher than the configured one")
)

// Options configure a Hasher.
type Options struct {
	// Cost is the bcrypt cost of new hashes, and the highest accepted of hashes to compare.
	Cost int
	// Workers is how many bcrypt runs may go at once (one per CPU keeps every core busy
	// and no more).
	Workers int
	// Queue is how many more may wait for a worker; past it, ErrBusy.
	Queue int
}

// Hasher hashes and compares passwords at one bcrypt cost, with bounded work: at most
// Workers runs at once and Queue waiting, and work whose caller has gone is dropped.
type Hasher struct {
	cost    int
	dummy   []byte // a valid hash of a random password, compared against when there is no real hash
	workers chan struct{}
	queue   chan struct{}
}

// NewHasher returns a Hasher for opts (bcrypt allows costs 4 to 31).
func NewHasher(opts Options) (*Hasher, error) {
	if opts.Cost < bcrypt.MinCost || opts.Cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d to %d", opts.Cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if opts.Workers < 1 || opts.Queue < 0 {
		return nil, fmt.Errorf("bcrypt workers (%d) must be at least 1 and the queue (%d) at least 0", opts.Workers, opts.Queue)
	}
	return &Hasher{
		cost:    opts.Cost,
		dummy:   dummyHash(opts.Cost),
		workers: make(chan struct{}, opts.Workers),
		queue:   make(chan struct{}, opts.Workers+opts.Queue),
	}, nil
}

// bcryptBase64 is the alphabet bcrypt writes salts and hashes in.
var bcryptBase64 = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// dummyHash is a well-formed bcrypt hash at cost of no password at all: a random salt and a
// random digest. Comparing a password with it costs exactly what comparing with a real hash
// at that cost does (bcrypt runs in full, then the digests differ), and it is made in no time,
// where hashing a random password at start took a full bcrypt (50–80 ms at cost 10) before
// the service could listen.
func dummyHash(cost int) []byte {
	salt, digest := make([]byte, 16), make([]byte, 23)
	rand.Read(salt)
	rand.Read(digest)
	return fmt.Appendf(nil, "$2a$%02d$%s%s", cost, bcryptBase64.EncodeToString(salt), bcryptBase64.EncodeToString(digest))
}

// work runs fn on a worker: at once if one is free, after waiting in the queue if there is
// room, else not at all (ErrBusy). If ctx ends while it waits (the caller gave up), fn is
// not run and ctx's error is returned.
func (h *Hasher) work(ctx context.Context, fn func()) error {
	select {
	case h.queue <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-h.queue }()
	select {
	case h.workers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.workers }()
	if err := ctx.Err(); err != nil {
		return err
	}
	fn()
	return nil
}

// Hash returns the bcrypt hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	var hash []byte
	var err error
	if werr := h.work(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), h.cost) }); werr != nil {
		return "", werr
	}
	return string(hash), err
}

// Matches reports whether password is the one hash was made from. A missing or malformed
// hash (an unknown user) still costs a full comparison, so timing does not tell a wrong
// password from an unknown user. A hash of a higher cost than the configured one is refused
// with ErrCostNotAccepted and no comparison; a lower one (made before the cost was raised)
// is compared.
func (h *Hasher) Matches(ctx context.Context, hash, password string) (bool, error) {
	against := []byte(hash)
	if cost, err := bcrypt.Cost(against); err != nil {
		against = h.dummy
		hash = ""
	} else if cost > h.cost {
		return false, ErrCostNotAccepted
	}
	var match bool
	err := h.work(ctx, func() { match = bcrypt.CompareHashAndPassword(against, []byte(password)) == nil })
	return match && hash != "", err
}
