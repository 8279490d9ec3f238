// Package password hashes and checks passwords with bcrypt.
package password

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// ErrTooLong is returned for passwords bcrypt cannot hash whole (over 72 bytes).
var ErrTooLong = bcrypt.ErrPasswordTooLong

// Hasher hashes at one bcrypt cost.
type Hasher struct {
	cost  int
	dummy []byte // a valid hash of a random password, compared against when there is no real hash
}

// NewHasher returns a Hasher at cost (bcrypt allows 4 to 31).
func NewHasher(cost int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return &Hasher{cost: cost, dummy: dummyHash(cost)}, nil
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

// Hash returns the bcrypt hash of password.
func (h *Hasher) Hash(password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	return string(hash), err
}

// Matches reports whether password is the one hash was made from. A missing or malformed
// hash (an unknown user) still costs a full comparison, so timing does not tell a wrong
// password from an unknown user.
func (h *Hasher) Matches(hash, password string) bool {
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
