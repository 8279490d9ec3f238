package throttle

import (
	"context"
	"sync"
)

// Gate lets at most n requests per key (a client address) through at once; the others wait
// their turn. A login or a signup costs a bcrypt run in auth, whose capacity is small and
// shared: one address may hold only a few of its places, so that a flood from one address
// queues here, behind itself, instead of filling auth for everyone. The zero of *Gate (nil)
// lets everything through.
type Gate struct {
	n    int
	mu   sync.Mutex
	keys map[string]*gateKey // only keys with requests in or waiting: bounded by the connections
}

type gateKey struct {
	places chan struct{}
	users  int // in or waiting
}

// NewGate returns a Gate of n places per key; n of 0 or less returns nil, which lets all in.
func NewGate(n int) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{n: n, keys: make(map[string]*gateKey)}
}

// Enter waits for one of key's places, or for ctx to end (then it returns ctx's error). The
// caller calls leave when done.
func (g *Gate) Enter(ctx context.Context, key string) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	g.mu.Lock()
	k := g.keys[key]
	if k == nil {
		k = &gateKey{places: make(chan struct{}, g.n)}
		g.keys[key] = k
	}
	k.users++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if k.users--; k.users == 0 {
			delete(g.keys, key)
		}
	}
	select {
	case k.places <- struct{}{}:
		return func() { <-k.places; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
