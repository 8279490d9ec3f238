package authapi

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifiedCache remembers tokens auth has verified, so that a user's next requests within
// a few seconds need no call to auth. Only successful verifications are kept; a refused
// token is asked about again every time.
//
// An entry lives for the cache's ttl or until its token expires, whichever comes first, so
// the cache never accepts a token auth would refuse for its age. What it does change: a
// token verified shortly before an auth outage keeps working for up to ttl, and a key
// removed from auth's JWT_PREVIOUS_SECRETS stops being accepted here up to ttl later.
//
// Entries are keyed by the token's SHA-256, not the token itself, and bounded in number:
// a flood of distinct valid tokens evicts older entries rather than growing the cache.
type verifiedCache struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]verified
}

type verified struct {
	uid     string
	expires time.Time
	by      string    // auth's X-Served-By on its answer
	at      time.Time // when auth answered
}

// maxCachedUIDBytes bounds what one entry holds: users' uids are 32 characters.
const maxCachedUIDBytes = 128

func newVerifiedCache(ttl time.Duration, maxEntries int) *verifiedCache {
	if ttl <= 0 || maxEntries <= 0 {
		return nil
	}
	return &verifiedCache{ttl: ttl, maxEntries: maxEntries, now: time.Now, entries: make(map[[sha256.Size]byte]verified)}
}

// get returns what auth answered of token, if it verified it within the entry's life.
func (c *verifiedCache) get(token string) (verified, bool) {
	if c == nil {
		return verified{}, false
	}
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[key]
	if !ok {
		return verified{}, false
	}
	if !c.now().Before(v.expires) {
		delete(c.entries, key)
		return verified{}, false
	}
	return v, true
}

// put remembers that auth (the pod by) verified token as uid's. A token whose expiry cannot
// be read is not kept: the cache must never outlive it.
func (c *verifiedCache) put(token, uid, by string) {
	if c == nil || uid == "" || len(uid) > maxCachedUIDBytes || len(by) > maxCachedUIDBytes {
		return
	}
	exp, ok := expiry(token)
	if !ok {
		return
	}
	now := c.now()
	expires := now.Add(c.ttl)
	if exp.Before(expires) {
		expires = exp
	}
	if !now.Before(expires) {
		return
	}
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.maxEntries {
		c.evictOne(now)
	}
	c.entries[key] = verified{uid: uid, expires: expires, by: by, at: now}
}

// evictOne removes an expired entry among the first few the map's random order gives, or
// else the first of them: constant work per insert, whatever the cache holds.
func (c *verifiedCache) evictOne(now time.Time) {
	const look = 8
	var first [sha256.Size]byte
	seen := 0
	for key, v := range c.entries {
		if !now.Before(v.expires) {
			delete(c.entries, key)
			return
		}
		if seen == 0 {
			first = key
		}
		if seen++; seen == look {
			break
		}
	}
	delete(c.entries, first)
}

// len is the number of entries held, expired ones included until they are evicted.
func (c *verifiedCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// tokenUID reads the uid claim of a token, unverified: the user auth's answer must name.
func tokenUID(token string) (string, bool) {
	claims := struct {
		UID string `json:"uid"`
		jwt.RegisteredClaims
	}{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil || claims.UID == "" {
		return "", false
	}
	return claims.UID, true
}

// expiry reads the exp claim of a token auth has just verified. Its signature is not checked
// again here: auth did that for this exact token, and the cache is keyed by all of it.
func expiry(token string) (time.Time, bool) {
	claims := jwt.RegisteredClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil || claims.ExpiresAt == nil {
		return time.Time{}, false
	}
	return claims.ExpiresAt.Time, true
}
