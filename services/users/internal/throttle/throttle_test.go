package throttle

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

func TestBurstThenWaitThenRefill(t *testing.T) {
	l := New(3, time.Minute, DefaultMaxKeys) // 3 at once, one more every 20 s
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		if wait := l.Wait("a", now); wait != 0 {
			t.Fatalf("try %d: wait %s, want none", i+1, wait)
		}
		l.Spend("a", now)
	}
	if wait := l.Wait("a", now); wait < 19*time.Second || wait > 20*time.Second {
		t.Fatalf("after 3 tries: wait %s, want about 20s", wait)
	}
	if wait := l.Wait("b", now); wait != 0 {
		t.Fatalf("another key waits %s", wait)
	}
	if wait := l.Wait("a", now.Add(20*time.Second)); wait != 0 {
		t.Fatalf("20 s later: wait %s, want none", wait)
	}
}

func TestTriesBeyondTheAllowanceWaitLonger(t *testing.T) {
	l := New(2, time.Minute, DefaultMaxKeys)
	now := time.Unix(1_000_000, 0)
	for range 4 { // two allowed, two more counted while others were in flight
		l.Spend("a", now)
	}
	if wait := l.Wait("a", now); wait < 89*time.Second || wait > 90*time.Second {
		t.Fatalf("wait %s, want about 90s (two tries of debt, then one token)", wait)
	}
}

func TestKeysAreBounded(t *testing.T) {
	l := New(1, time.Minute, 2)
	now := time.Unix(1_000_000, 0)
	l.Spend("a", now)
	l.Spend("b", now)
	l.Spend("c", now) // no room: not limited rather than more memory
	if wait := l.Wait("c", now); wait != 0 {
		t.Fatalf("a key with no room waits %s", wait)
	}
	// Once a's bucket is full again it is forgotten, and c gets its place.
	later := now.Add(time.Minute)
	l.Spend("b", later)
	l.Spend("c", later)
	if wait := l.Wait("c", later); wait == 0 {
		t.Fatal("c is not limited once there is room")
	}
	if len(l.keys) > 2 {
		t.Fatalf("%d keys remembered, want at most 2", len(l.keys))
	}
}

func TestNilLimiterAllowsEverything(t *testing.T) {
	l := New(0, time.Minute, DefaultMaxKeys)
	l.Spend("a", time.Now())
	if l.Wait("a", time.Now()) != 0 {
		t.Fatal("a disabled limiter limits")
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"203.0.113.7:5555":                      "203.0.113.7",
		"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2::1]:443":                 "2001:db8:1:2::/64",
		"[::ffff:192.0.2.1]:1":                  "192.0.2.1",
		"not an address":                        "not an address",
	} {
		if got := ClientKey(addr); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestGateLetsNPerKeyAtOnce(t *testing.T) {
	g := NewGate(2)
	ctx := context.Background()
	a1, _ := g.Enter(ctx, "a")
	a2, _ := g.Enter(ctx, "a")
	if b, err := g.Enter(ctx, "b"); err != nil {
		t.Fatalf("another key waits: %v", err)
	} else {
		b()
	}
	waiting, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := g.Enter(waiting, "a"); err == nil {
		t.Fatal("a third request of a key got in with two inside")
	}
	entered := make(chan struct{})
	go func() {
		leave, err := g.Enter(ctx, "a")
		if err == nil {
			leave()
		}
		close(entered)
	}()
	a1()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting request did not get the place that was left")
	}
	a2()
	if len(g.keys) != 0 {
		t.Fatalf("%d keys remembered with nobody in", len(g.keys))
	}
}

// TestFairLetsTheLeastRecentGoFirst: with its one place taken, the next goes to the key
// that has gone through least, whatever the order of arrival; a full line turns away the
// busiest waiter for a newcomer, or the newcomer itself when it is the busiest.
func TestFairLetsTheLeastRecentGoFirst(t *testing.T) {
	f := NewFair(1, 2, time.Minute, DefaultMaxKeys)
	ctx := context.Background()
	for range 3 { // "flood" has had three turns
		leave, err := f.Enter(ctx, "flood")
		if err != nil {
			t.Fatal(err)
		}
		leave()
	}
	f.Charge("flood", 4)
	leave, _ := f.Enter(ctx, "other") // takes the place
	order := make(chan string, 3)
	enter := func(key string) chan error {
		done := make(chan error, 1)
		go func() {
			l, err := f.Enter(ctx, key)
			if err == nil {
				order <- key
				l()
			}
			done <- err
		}()
		return done
	}
	waitLine := func(n int) {
		for deadline := time.Now().Add(5 * time.Second); ; {
			f.mu.Lock()
			got := len(f.waiting)
			f.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiting, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	flood := enter("flood")
	waitLine(1)
	newcomer := enter("newcomer")
	waitLine(2)
	if _, err := f.Enter(ctx, "flood"); err != ErrLineFull {
		t.Fatalf("the busiest key at a full line: %v, want ErrLineFull", err)
	}
	third := enter("third") // the line is full: the flood's waiter is turned away for it
	if err := <-flood; err != ErrLineFull {
		t.Fatalf("the flood's waiter, a newcomer at the full line: %v, want ErrLineFull", err)
	}
	leave()
	if err := <-newcomer; err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if first, second := <-order, <-order; first != "newcomer" || second != "third" {
		t.Fatalf("let in %s, then %s; want newcomer, then third", first, second)
	}
}

func TestLimiterTakeNeverGoesPastTheAllowance(t *testing.T) {
	l := New(3, time.Minute, DefaultMaxKeys)
	now := time.Unix(1_000_000, 0)
	var tries []func(bool)
	for range 3 {
		done, wait := l.Take("a", now)
		if wait != 0 {
			t.Fatalf("a try within the allowance waits %s", wait)
		}
		tries = append(tries, done)
	}
	if _, wait := l.Take("a", now); wait == 0 {
		t.Fatal("a fourth try with three in flight got in")
	}
	tries[0](false) // a success gives its try back
	if _, wait := l.Take("a", now); wait != 0 {
		t.Fatalf("after a success: wait %s, want none", wait)
	}
}

func TestProxiesClientKey(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer, forwarded, want string
	}{
		{"203.0.113.7:1", "198.51.100.1", "203.0.113.7"},                   // not a proxy: the header is the client's own
		{"10.1.2.3:1", "198.51.100.1", "198.51.100.1"},                     // one trusted proxy
		{"10.1.2.3:1", "6.6.6.6, 198.51.100.1, 192.0.2.1", "198.51.100.1"}, // the client wrote 6.6.6.6 itself
		{"10.1.2.3:1", "", "10.1.2.3"},                                     // a proxy that said nothing
		{"10.1.2.3:1", "junk, 10.9.9.9", "10.9.9.9"},                       // the last believed hop
		{"10.1.2.3:1", "2001:db8:1:2::7", "2001:db8:1:2::/64"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.forwarded != "" {
			r.Header.Set("X-Forwarded-For", c.forwarded)
		}
		if got := proxies.ClientKey(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.forwarded, got, c.want)
		}
	}
	var none *Proxies
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "10.1.2.3:1", []string{"198.51.100.1"}
	if got := none.ClientKey(r); got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %s, want the peer", got)
	}
	if _, err := ParseProxies("10.0.0.0/8,not-a-cidr"); err == nil {
		t.Error("a list with a bad entry was accepted")
	}
}
