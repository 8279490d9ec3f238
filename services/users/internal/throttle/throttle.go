// Package throttle counts what a client may do only so often (failed logins, signups) per
// key (a client address, an account), and says when a key has used up its allowance and how
// long until it may try again. Each key has a token bucket (golang.org/x/time/rate): Burst
// tries at once, refilled at Burst per Window.
package throttle

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is the buckets of one kind of try. The zero of *Limiter (nil) allows everything.
type Limiter struct {
	every   rate.Limit
	burst   int
	maxKeys int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
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
		keys: make(map[string]*rate.Limiter)}
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
// RemoteAddr): its IPv4 address, or the /64 network of its IPv6 address (one machine often
// has a whole /64 to pick addresses from). The address is the TCP peer's, never a header a
// client could write.
func ClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		prefix, _ := addr.Prefix(64)
		return prefix.String()
	}
	return addr.String()
}
