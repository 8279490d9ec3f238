// Package token issues and verifies the signed tokens (HS256 JWTs) that users hand out at
// login and tasks checks on every request.
package token

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretBytes is the shortest signing key accepted: HS256 wants at least 256 bits.
const MinSecretBytes = 32

// ErrInvalid is returned for every token that must not be trusted, whatever the reason.
var ErrInvalid = errors.New("invalid token")

type claims struct {
	UID string `json:"uid"`
	jwt.RegisteredClaims
}

// Issuer signs and verifies tokens with one secret.
type Issuer struct {
	secret []byte
	name   string
	ttl    time.Duration
	now    func() time.Time

	// verified remembers tokens that passed every check, with the times they are valid
	// between: tasks sends the same token with every request, and parsing and checking it
	// again each time was a sixth of auth's work under load. Only the time is checked again.
	verifiedMu sync.RWMutex
	verified   map[string]verifiedToken
}

// verifiedToken is a token that passed Verify: its user, and from when until when it is valid.
type verifiedToken struct {
	uid        string
	validFrom  time.Time // the later of nbf and iat
	validUntil time.Time // exp
}

// maxVerified bounds the tokens remembered (about 300 bytes each); when full, all are forgotten.
const maxVerified = 4096

// NewIssuer returns an Issuer whose tokens name issuer and expire after ttl.
func NewIssuer(secret []byte, issuer string, ttl time.Duration) (*Issuer, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the signing secret has %d bytes; at least %d are needed", len(secret), MinSecretBytes)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("token lifetime must be positive, not %s", ttl)
	}
	return &Issuer{secret: secret, name: issuer, ttl: ttl, now: time.Now, verified: make(map[string]verifiedToken)}, nil
}

// Issue returns a token for user uid: uid is both the subject and the "uid" claim.
func (i *Issuer) Issue(uid string) (string, error) {
	if uid == "" {
		return "", errors.New("a token needs a user id")
	}
	now := i.now()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		UID: uid,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   uid,
			Issuer:    i.name,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
		},
	})
	return t.SignedString(i.secret)
}

// Verify returns the user id of a token signed with this secret, by this issuer, with HS256
// (an "alg" of none or any other algorithm is refused), not expired and already valid.
func (i *Issuer) Verify(tokenString string) (string, error) {
	i.verifiedMu.RLock()
	v, found := i.verified[tokenString]
	i.verifiedMu.RUnlock()
	if found {
		// The checks jwt makes of the times: not before nbf or iat, before exp.
		if now := i.now(); now.Before(v.validFrom) || !now.Before(v.validUntil) {
			return "", fmt.Errorf("%w: token is expired or not valid yet", ErrInvalid)
		}
		return v.uid, nil
	}
	var c claims
	_, err := jwt.ParseWithClaims(tokenString, &c,
		func(*jwt.Token) (any, error) { return i.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(i.name),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.UID == "" || c.UID != c.Subject {
		return "", fmt.Errorf("%w: uid and subject disagree", ErrInvalid)
	}
	v = verifiedToken{uid: c.UID, validUntil: c.ExpiresAt.Time}
	for _, from := range []*jwt.NumericDate{c.NotBefore, c.IssuedAt} {
		if from != nil && from.After(v.validFrom) {
			v.validFrom = from.Time
		}
	}
	i.verifiedMu.Lock()
	if len(i.verified) >= maxVerified {
		clear(i.verified)
	}
	i.verified[tokenString] = v
	i.verifiedMu.Unlock()
	return c.UID, nil
}
