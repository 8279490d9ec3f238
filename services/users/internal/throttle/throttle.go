// Package throttle counts what a client may do only so often (failed logins, signups) per
// key (a client address, an account), and says when a key has used up its allowance and how
// long until it may try again. Each key has a token bucket (golang.org/x/time/rate): Burst
// tries at once, refilled at Burst per Window.
package throttle

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kub-demo/kub-demo/platform/httpserver"
)

// Limiter is the buckets of one kind of try. The zero of *Limiter (nil) allows everything.
type Limiter struct {
	every   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	keys    map[string]*rate.Limiter
	pending map[string]int // tries let in by Take and not yet done
}

// DefaultMaxKeys bounds the keys a Limiter remembers (about 150 bytes each).
const DefaultMaxKeys = 20_000

// New returns a Limiter that allows burst tries per key at once, refilled at burst per window;
// burst 0 or less returns nil, which allows everything. It remembers at most maxKeys keys
// with tries counted against them: past that, keys it has no room for are not limited (the
// auth service's own bounded queue still holds), rather than memory growing without bound.
func New(burst int, window time.Duration, maxKeys int) *Limiter {
	if burst <= 0 || window <= 0 {
		return nil
	}
	return &Limiter{every: rate.Limit(float64(burst) / window.Seconds()), burst: burst, maxKeys: maxKeys,
		keys: make(map[string]*rate.Limiter), pending: make(map[string]int)}
}

// Wait is how long key must wait before its next try: 0 when it may try now.
func (l *Limiter) Wait(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys[key]
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(l.every) * float64(time.Second)))
}

// Spend counts one try against key.
func (l *Limiter) Spend(key string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= l.maxKeys && !l.sweep(now) {
			return
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.keys[key] = lim
	}
	lim.ReserveN(now, 1) // into debt if need be: each try waits its turn
}

// Take lets key try now if it has a try left with those already in flight counted
// (pending), and returns done, which counts the try when it failed, or else gives it back
// (a successful login, say). Otherwise it returns how long key must wait. Unlike Wait then
// Spend, tries that come at once never take key past its allowance: exactly burst go
// through, however many come together.
func (l *Limiter) Take(key string, now time.Time) (done func(failed bool), wait time.Duration) {
	if l == nil {
		return func(bool) {}, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tokens := float64(l.burst)
	if lim, ok := l.keys[key]; ok {
		tokens = lim.TokensAt(now)
	}
	if left := tokens - float64(l.pending[key]); left < 1 {
		return nil, time.Duration(math.Ceil((1 - left) / float64(l.every) * float64(time.Second)))
	}
	l.pending[key]++
	return func(failed bool) {
		l.mu.Lock()
		if l.pending[key]--; l.pending[key] <= 0 {
			delete(l.pending, key)
		}
		l.mu.Unlock()
		if failed {
			l.Spend(key, time.Now())
		}
	}, 0
}

// sweep forgets the keys whose bucket has filled up again (they are as good as new), and
// reports whether that made room. Callers hold l.mu.
func (l *Limiter) sweep(now time.Time) bool {
	for key, lim := range l.keys {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.keys, key)
		}
	}
	return len(l.keys) < l.maxKeys
}

// ClientKey is the key of the client that sent a request from remoteAddr (an http.Request's
// RemoteAddr): the one the connection limit counts by (httpserver.ClientKey). The address is
// the TCP peer's, never a header a client could write.
func ClientKey(remoteAddr string) string { return httpserver.ClientKey(remoteAddr) }
