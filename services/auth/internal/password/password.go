// Package password hashes and checks passwords with bcrypt.
package password

import (
	"crypto/rand"
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
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return nil, err
	}
	return &Hasher{cost: cost, dummy: dummy}, nil
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
