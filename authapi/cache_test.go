package authapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// clock is a time a test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// cachedClient is a client of auth with a verify cache of ttl and entries, on a clock the
// test moves.
func cachedClient(t *testing.T, auth *fakeAuth, ttl time.Duration, entries int) (*Client, *clock) {
	t.Helper()
	client := NewClient(Config{URL: auth.URL, Timeout: 2 * time.Second, VerifyCache: ttl, VerifyCacheEntries: entries})
	c := &clock{t: time.Now()}
	if client.cache != nil {
		client.cache.now = c.now
	}
	return client, c
}

// verify calls VerifyToken and fails the test unless it gives want.
func verify(t *testing.T, client *Client, token, want string) {
	t.Helper()
	uid, err := client.VerifyToken(context.Background(), token)
	if err != nil || uid != want {
		t.Fatalf("VerifyToken = %q, %v; want %q", uid, err, want)
	}
}

// TestAVerifiedTokenIsServedFromTheCacheForItsLife: within the cache's life a token auth
// verified is not sent to auth again; past it, it is.
func TestAVerifiedTokenIsServedFromTheCacheForItsLife(t *testing.T) {
	auth := newFakeAuth(t, validFor("u1"))
	client, clock := cachedClient(t, auth, 10*time.Second, 100)
	token := tokenExpiring(t, clock.now().Add(time.Hour), "u1")
	verify(t, client, token, "u1")
	clock.advance(9 * time.Second)
	verify(t, client, token, "u1")
	if got := auth.calls.Load(); got != 1 {
		t.Fatalf("auth called %d times for two checks 9 s apart with a 10 s cache; want 1", got)
	}
	clock.advance(time.Second)
	verify(t, client, token, "u1")
	if got := auth.calls.Load(); got != 2 {
		t.Fatalf("auth called %d times after the entry's 10 s; want 2", got)
	}
}

// TestTheCacheNeverOutlivesTheToken: a token that expires before the cache's life ends is
// sent to auth again from its expiry on, and auth's refusal then stands.
func TestTheCacheNeverOutlivesTheToken(t *testing.T) {
	var expired bool
	auth := newFakeAuth(t, func(token string) (int, string) {
		if expired {
			return http.StatusUnauthorized, `{"message":"Could not verify token."}`
		}
		return validFor("u1")(token)
	})
	client, clock := cachedClient(t, auth, time.Minute, 100)
	token := tokenExpiring(t, clock.now().Add(3*time.Second), "u1")
	verify(t, client, token, "u1")
	clock.advance(3 * time.Second)
	expired = true
	if uid, err := client.VerifyToken(context.Background(), token); !errors.Is(err, ErrRejected) {
		t.Fatalf("an expired token: %q, %v; want ErrRejected from auth", uid, err)
	}
	if got := auth.calls.Load(); got != 2 {
		t.Fatalf("auth called %d times; want 2 (the cache must not answer past the token's exp)", got)
	}
}

// TestRefusedTokensAreNeverCached: each check of a refused token asks auth again, so a token
// auth starts accepting (or stops) is seen at once.
func TestRefusedTokensAreNeverCached(t *testing.T) {
	auth := newFakeAuth(t, func(string) (int, string) { return http.StatusUnauthorized, `{"message":"Could not verify token."}` })
	client, clock := cachedClient(t, auth, time.Minute, 100)
	token := tokenExpiring(t, clock.now().Add(time.Hour), "u1")
	for range 3 {
		if _, err := client.VerifyToken(context.Background(), token); !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	}
	if got := auth.calls.Load(); got != 3 {
		t.Fatalf("auth called %d times for 3 checks of a refused token; want 3", got)
	}
}

// TestATokenWithoutExpiryIsNotCached: the cache must know when a token ends to keep it.
func TestATokenWithoutExpiryIsNotCached(t *testing.T) {
	auth := newFakeAuth(t, validFor("u1"))
	client, _ := cachedClient(t, auth, time.Minute, 100)
	for _, token := range []string{"not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"} { // the second: {} claims
		verify(t, client, token, "u1")
		verify(t, client, token, "u1")
	}
	if got := auth.calls.Load(); got != 4 {
		t.Fatalf("auth called %d times for 4 checks of tokens without exp; want 4", got)
	}
}

// TestTheCacheStaysWithinItsBound: a flood of distinct valid tokens never holds more than
// VerifyCacheEntries, and the cache goes on serving what it holds.
func TestTheCacheStaysWithinItsBound(t *testing.T) {
	auth := newFakeAuth(t, func(token string) (int, string) {
		return http.StatusOK, `{"message":"Valid token.","uid":"` + jwtSubject(token) + `"}`
	})
	const bound = 50
	client, clock := cachedClient(t, auth, time.Minute, bound)
	exp := clock.now().Add(time.Hour)
	for i := range 500 {
		verify(t, client, tokenExpiring(t, exp, fmt.Sprint(i)), fmt.Sprint(i))
		if n := client.cache.len(); n > bound {
			t.Fatalf("after %d tokens the cache holds %d entries; bound %d", i+1, n, bound)
		}
	}
	last := tokenExpiring(t, exp, "last")
	verify(t, client, last, "last")
	before := auth.calls.Load()
	verify(t, client, last, "last")
	if auth.calls.Load() != before {
		t.Fatal("the token just verified was not served from a full cache")
	}
}

// TestACacheOfZeroAsksAuthEveryTime: AUTH_VERIFY_CACHE=0 is the course's behaviour.
func TestACacheOfZeroAsksAuthEveryTime(t *testing.T) {
	auth := newFakeAuth(t, validFor("u1"))
	client, clock := cachedClient(t, auth, 0, 100)
	token := tokenExpiring(t, clock.now().Add(time.Hour), "u1")
	for range 3 {
		verify(t, client, token, "u1")
	}
	if got := auth.calls.Load(); got != 3 {
		t.Fatalf("auth called %d times for 3 checks with no cache; want 3", got)
	}
}
