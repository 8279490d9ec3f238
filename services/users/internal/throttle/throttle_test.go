package throttle

import (
	"context"
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
