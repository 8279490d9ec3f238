package throttle

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// Fair lets at most n requests (logins and signups: bcrypt runs in auth) through at once,
// from all clients; the others wait in a line that is not first come, first served: the
// next place goes to the one whose key (a client address) has gone through least of late (a
// count that halves every halfLife), the longest waiting of those. A flood, of wrong
// passwords or of right ones, from however many addresses, then fills only what the others
// leave: a client that logs in now and then goes to the front of the line. The zero of
// *Fair (nil) lets everything through.
type Fair struct {
	n          int
	maxWaiting int
	halfLife   time.Duration
	maxKeys    int

	mu       sync.Mutex
	inside   int
	seq      uint64
	waiting  []*fairWaiter
	recently map[string]decayed // by key: how much went through of late
}

type fairWaiter struct {
	key    string
	seq    uint64
	answer chan bool // true when let in, false when turned away from a full line
}

// decayed is a count that halves every halfLife from at.
type decayed struct {
	count float64
	at    time.Time
}

func (d decayed) decayedAt(now time.Time, halfLife time.Duration) float64 {
	return d.count * math.Exp2(-now.Sub(d.at).Seconds()/halfLife.Seconds())
}

// NewFair returns a Fair of n places and a line of at most waiting; n of 0 or less returns
// nil, which lets all in. It remembers at most maxKeys keys (past that, those that have gone
// through least are forgotten).
func NewFair(n, waiting int, halfLife time.Duration, maxKeys int) *Fair {
	if n <= 0 {
		return nil
	}
	return &Fair{n: n, maxWaiting: max(waiting, 1), halfLife: halfLife, maxKeys: maxKeys, recently: make(map[string]decayed)}
}

// ErrLineFull is what Enter returns at once when the line is full of waiters that have gone
// through no more than this one of late.
var ErrLineFull = errors.New("the line for auth is full")

// Enter waits for a place, or for ctx to end (then it returns ctx's error). When the line is
// full, the newcomer takes the place in it of the waiter that has gone through most of late
// if it has gone through less, which is then told ErrLineFull; else the newcomer is. The
// caller calls leave when done.
func (f *Fair) Enter(ctx context.Context, key string) (leave func(), err error) {
	if f == nil {
		return func() {}, nil
	}
	f.mu.Lock()
	now := time.Now()
	if f.inside < f.n && len(f.waiting) == 0 {
		f.admitLocked(key, now)
		f.mu.Unlock()
		return f.leave, nil
	}
	if len(f.waiting) >= f.maxWaiting {
		worst, worstRecently := -1, math.Inf(-1)
		for i, w := range f.waiting {
			if recently := f.recently[w.key].decayedAt(now, f.halfLife); recently >= worstRecently {
				worst, worstRecently = i, recently // the newest of those with the most
			}
		}
		if worstRecently <= f.recently[key].decayedAt(now, f.halfLife) {
			f.mu.Unlock()
			return nil, ErrLineFull
		}
		f.waiting[worst].answer <- false
		f.waiting = slices.Delete(f.waiting, worst, worst+1)
	}
	f.seq++
	w := &fairWaiter{key: key, seq: f.seq, answer: make(chan bool, 1)}
	f.waiting = append(f.waiting, w)
	f.mu.Unlock()
	select {
	case admitted := <-w.answer:
		if !admitted {
			return nil, ErrLineFull
		}
		return f.leave, nil
	case <-ctx.Done():
		f.mu.Lock()
		if i := slices.Index(f.waiting, w); i >= 0 {
			f.waiting = slices.Delete(f.waiting, i, i+1)
			f.mu.Unlock()
			return nil, ctx.Err()
		}
		f.mu.Unlock()
		if <-w.answer { // let in, or turned away, as ctx ended
			f.leave()
		}
		return nil, ctx.Err()
	}
}

// admitLocked counts key in. Callers hold f.mu.
func (f *Fair) admitLocked(key string, now time.Time) {
	f.inside++
	f.chargeLocked(key, 1, now)
}

// Charge counts n more turns against key: what a turn turned out to cost (a failed login,
// which is what a guesser's turns are, costs more than one).
func (f *Fair) Charge(key string, n float64) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chargeLocked(key, n, time.Now())
}

func (f *Fair) chargeLocked(key string, n float64, now time.Time) {
	if _, ok := f.recently[key]; !ok && len(f.recently) >= f.maxKeys {
		f.forgetLocked(now)
	}
	f.recently[key] = decayed{count: f.recently[key].decayedAt(now, f.halfLife) + n, at: now}
}

// forgetLocked forgets the keys that have gone through less than once of late, or all of
// them if that is not enough. Callers hold f.mu.
func (f *Fair) forgetLocked(now time.Time) {
	for key, d := range f.recently {
		if d.decayedAt(now, f.halfLife) < 1 {
			delete(f.recently, key)
		}
	}
	if len(f.recently) >= f.maxKeys {
		clear(f.recently)
	}
}

// leave gives the place that was left to the first in line.
func (f *Fair) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inside--
	if len(f.waiting) == 0 {
		return
	}
	now := time.Now()
	best, bestRecently := 0, math.Inf(1)
	for i, w := range f.waiting {
		// The line is in order of arrival: the first of the least recent wins.
		if recently := f.recently[w.key].decayedAt(now, f.halfLife); recently < bestRecently {
			best, bestRecently = i, recently
		}
	}
	w := f.waiting[best]
	f.waiting = slices.Delete(f.waiting, best, best+1)
	f.admitLocked(w.key, now)
	w.answer <- true
}

// Seen remembers keys for a while (an address that logged in to an account, say), at most
// maxKeys of them: past that, the oldest are forgotten first.
type Seen struct {
	keep    time.Duration
	maxKeys int

	mu   sync.Mutex
	keys map[string]time.Time
}

// NewSeen returns a Seen that remembers a key for keep after it was last marked.
func NewSeen(keep time.Duration, maxKeys int) *Seen {
	return &Seen{keep: keep, maxKeys: maxKeys, keys: make(map[string]time.Time)}
}

// Mark remembers key from now.
func (s *Seen) Mark(key string, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[key]; !ok && len(s.keys) >= s.maxKeys {
		var oldest string
		for k, at := range s.keys {
			if now.Sub(at) > s.keep {
				delete(s.keys, k)
			} else if oldest == "" || at.Before(s.keys[oldest]) {
				oldest = k
			}
		}
		if len(s.keys) >= s.maxKeys {
			delete(s.keys, oldest)
		}
	}
	s.keys[key] = now
}

// Has reports whether key was marked less than keep ago.
func (s *Seen) Has(key string, now time.Time) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.keys[key]
	return ok && now.Sub(at) <= s.keep
}
