// Package token issues and verifies the signed tokens (HS256 JWTs) that users hand out at
// login and tasks checks on every request.
//
// Keys rotate without logging anyone out: every token names the key that signed it (the
// "kid" header, derived from the key, so that every replica agrees without being told), the
// current key signs, and older keys are still accepted until the tokens they signed expire.
package token

import (
	"crypto/sha256"
	"encoding/hex"
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

// Options configure an Issuer.
type Options struct {
	// Secret signs new tokens, and verifies them.
	Secret []byte
	// Previous are keys that signed tokens before Secret did: still accepted, never used to sign.
	Previous [][]byte
	// Issuer is written into tokens (iss) and required of them.
	Issuer string
	// TTL is how long a token is valid after it is issued.
	TTL time.Duration
	// Leeway is the clock difference between replicas tolerated on iat, nbf and exp.
	Leeway time.Duration
}

// Issuer signs tokens with one key and verifies them with it and the previous ones.
type Issuer struct {
	signing key
	keys    map[string]key // by id: the signing key and the previous ones
	// anyKey tries every key, the signing one first: for tokens without a kid.
	anyKey jwt.VerificationKeySet
	name   string
	ttl    time.Duration
	leeway time.Duration
	now    func() time.Time
	// verified remembers tokens that passed every check, with the times they are valid
	// between: tasks sends the same token with every request, and parsing and checking it
	// again each time was a sixth of auth's work under load. Only the time is checked again.
	verifiedMu sync.RWMutex
	verified   map[string]verifiedToken
}

type key struct {
	id     string
	secret []byte
}

// KeyID is the id a token signed with secret carries in its "kid" header: the first 8 bytes
// of a SHA-256 of the key, in hex. It names the key without telling anything about it.
func KeyID(secret []byte) string {
	sum := sha256.Sum256(append([]byte("kub-demo token key id:"), secret...))
	return hex.EncodeToString(sum[:8])
}

// verifiedToken is a token that passed Verify: its user, and from when until when it is valid.
type verifiedToken struct {
	uid        string
	validFrom  time.Time // the later of nbf and iat
	validUntil time.Time // exp
}

// maxVerified bounds the tokens remembered (about 300 bytes each); when full, all are forgotten.
const maxVerified = 4096

// NewIssuer returns an Issuer for opts.
func NewIssuer(opts Options) (*Issuer, error) {
	if opts.TTL <= 0 {
		return nil, fmt.Errorf("token lifetime must be positive, not %s", opts.TTL)
	}
	if opts.Leeway < 0 {
		return nil, fmt.Errorf("token leeway must not be negative, not %s", opts.Leeway)
	}
	i := &Issuer{name: opts.Issuer, ttl: opts.TTL, leeway: opts.Leeway, now: time.Now,
		keys: make(map[string]key), verified: make(map[string]verifiedToken)}
	for n, secret := range append([][]byte{opts.Secret}, opts.Previous...) {
		if len(secret) < MinSecretBytes {
			which := "the signing secret"
			if n > 0 {
				which = fmt.Sprintf("previous secret %d", n)
			}
			return nil, fmt.Errorf("%s has %d bytes; at least %d are needed", which, len(secret), MinSecretBytes)
		}
		k := key{id: KeyID(secret), secret: secret}
		if n == 0 {
			i.signing = k
		}
		if _, dup := i.keys[k.id]; !dup {
			i.keys[k.id] = k
			i.anyKey.Keys = append(i.anyKey.Keys, k.secret)
		}
	}
	return i, nil
}

// SigningKeyID is the id of the key new tokens are signed with.
func (i *Issuer) SigningKeyID() string { return i.signing.id }

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
	t.Header["kid"] = i.signing.id
	return t.SignedString(i.signing.secret)
}

// Verify returns the user id of a token signed with one of this issuer's keys, by this
// issuer, with HS256 (an "alg" of none or any other algorithm is refused), not expired and
// already valid, give or take the leeway. A token naming a key this issuer does not have is
// refused; one naming none (made before tokens carried key ids) is tried with every key.
func (i *Issuer) Verify(tokenString string) (string, error) {
	i.verifiedMu.RLock()
	v, found := i.verified[tokenString]
	i.verifiedMu.RUnlock()
	if found {
		// The checks jwt makes of the times: not before nbf or iat, before exp.
		if now := i.now(); now.Before(v.validFrom.Add(-i.leeway)) || !now.Before(v.validUntil.Add(i.leeway)) {
			return "", fmt.Errorf("%w: token is expired or not valid yet", ErrInvalid)
		}
		return v.uid, nil
	}
	var c claims
	_, err := jwt.ParseWithClaims(tokenString, &c, i.verificationKey,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(i.name),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(i.leeway),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
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

// errUnknownKey is why a token naming a key that this issuer does not have is refused.
var errUnknownKey = errors.New("signed with a key this auth does not have (rotated out, or not rolled out here yet)")

func (i *Issuer) verificationKey(t *jwt.Token) (any, error) {
	kid, named := t.Header["kid"]
	if !named {
		return i.anyKey, nil
	}
	id, _ := kid.(string)
	k, ok := i.keys[id]
	if !ok {
		return nil, errUnknownKey
	}
	return k.secret, nil
}
