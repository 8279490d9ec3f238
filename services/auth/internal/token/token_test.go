package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func newIssuer(t *testing.T) *Issuer {
	t.Helper()
	i, err := NewIssuer(Options{Secret: secret, Issuer: "kub-demo", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestIssuedTokenVerifies(t *testing.T) {
	i := newIssuer(t)
	signed, err := i.Issue("user-42")
	if err != nil {
		t.Fatal(err)
	}
	uid, err := i.Verify(signed)
	if err != nil || uid != "user-42" {
		t.Fatalf("Verify = %q, %v; want user-42", uid, err)
	}
}

func TestNewIssuerRefusesShortSecret(t *testing.T) {
	if _, err := NewIssuer(Options{Secret: []byte("too short"), Issuer: "kub-demo", TTL: time.Hour}); err == nil {
		t.Fatal("a 9-byte secret was accepted")
	}
	if _, err := NewIssuer(Options{Secret: secret, Previous: [][]byte{[]byte("short")}, Issuer: "kub-demo", TTL: time.Hour}); err == nil {
		t.Fatal("a 5-byte previous secret was accepted")
	}
}

// sign makes a token with any claims, method and key, as an attacker or a stale issuer would.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRefusesForgedAndStaleTokens(t *testing.T) {
	i := newIssuer(t)
	now := time.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"uid": "u1", "sub": "u1", "iss": "kub-demo", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	with := func(key string, value any) jwt.MapClaims {
		c := valid()
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return c
	}
	good := sign(t, jwt.SigningMethodHS256, secret, valid())
	parts := strings.Split(good, ".")
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"uid":"admin","sub":"admin","iss":"kub-demo","exp":9999999999}`))

	tests := map[string]string{
		"alg none":             sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid()),
		"another key":          sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), valid()),
		"HS512 with our key":   sign(t, jwt.SigningMethodHS512, secret, valid()),
		"expired":              sign(t, jwt.SigningMethodHS256, secret, with("exp", now.Add(-time.Minute).Unix())),
		"no expiry":            sign(t, jwt.SigningMethodHS256, secret, with("exp", nil)),
		"not yet valid":        sign(t, jwt.SigningMethodHS256, secret, with("nbf", now.Add(time.Hour).Unix())),
		"issued in future":     sign(t, jwt.SigningMethodHS256, secret, with("iat", now.Add(time.Hour).Unix())),
		"wrong issuer":         sign(t, jwt.SigningMethodHS256, secret, with("iss", "someone-else")),
		"no uid":               sign(t, jwt.SigningMethodHS256, secret, with("uid", nil)),
		"uid is not subject":   sign(t, jwt.SigningMethodHS256, secret, with("uid", "admin")),
		"tampered payload":     parts[0] + "." + tamperedPayload + "." + parts[2],
		"tampered signature":   parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"signature stripped":   parts[0] + "." + parts[1] + ".",
		"empty":                "",
		"not a JWT":            "abc",
		"the original's token": "abc.def.ghi",
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			if uid, err := i.Verify(tok); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %q, %v; want ErrInvalid", uid, err)
			}
		})
	}
}

// TestRememberedTokensStillExpire: a token verified once is remembered, but each later
// Verify checks the time again, and a token with another signature is checked in full.
func TestRememberedTokensStillExpire(t *testing.T) {
	i := newIssuer(t)
	start := time.Now()
	i.now = func() time.Time { return start }
	signed, err := i.Issue("user-42")
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := i.Verify(signed); err != nil || uid != "user-42" {
		t.Fatalf("first Verify = %q, %v", uid, err)
	}
	if uid, err := i.Verify(signed); err != nil || uid != "user-42" {
		t.Fatalf("remembered Verify = %q, %v", uid, err)
	}
	tampered := signed[:len(signed)-2] + "AA"
	if tampered == signed {
		tampered = signed[:len(signed)-2] + "BB"
	}
	if _, err := i.Verify(tampered); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token with another signature: %v, want ErrInvalid", err)
	}
	for name, at := range map[string]time.Time{
		"at exp":         start.Add(time.Hour + time.Second),
		"after exp":      start.Add(2 * time.Hour),
		"before iat/nbf": start.Add(-time.Minute),
	} {
		i.now = func() time.Time { return at }
		if _, err := i.Verify(signed); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: remembered token verified: %v", name, err)
		}
	}
}

var newSecret = []byte("the-next-signing-key-0123456789abcdef")

// TestRotationKeepsEveryoneLoggedIn walks a key rotation: tokens of the old key stay valid
// once the new key signs, tokens of the new key are valid on replicas that only accept it
// (the first step of a rollout), and once the old key is dropped its tokens are refused.
func TestRotationKeepsEveryoneLoggedIn(t *testing.T) {
	issuer := func(signing []byte, previous ...[]byte) *Issuer {
		i, err := NewIssuer(Options{Secret: signing, Previous: previous, Issuer: "kub-demo", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	old := issuer(secret)
	oldToken, _ := old.Issue("u1")
	// A token made before tokens carried key ids.
	legacy := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"uid": "u1", "sub": "u1", "iss": "kub-demo",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})

	step1 := issuer(secret, newSecret) // signs with the old key, accepts the new one
	step2 := issuer(newSecret, secret) // signs with the new key, accepts the old one
	step3 := issuer(newSecret)         // the old key dropped, once its tokens expired
	newToken, _ := step2.Issue("u2")

	for name, c := range map[string]struct {
		i     *Issuer
		token string
		ok    bool
	}{
		"old token, old replica":      {old, oldToken, true},
		"old token, step 1":           {step1, oldToken, true},
		"old token, step 2":           {step2, oldToken, true},
		"legacy token, step 2":        {step2, legacy, true},
		"new token, step 1":           {step1, newToken, true},
		"new token, step 2":           {step2, newToken, true},
		"new token, step 3":           {step3, newToken, true},
		"new token, old replica":      {old, newToken, false},
		"old token, old key dropped":  {step3, oldToken, false},
		"legacy token, old key drops": {step3, legacy, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.i.Verify(c.token)
			if (err == nil) != c.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, c.ok)
			}
		})
	}
	if step2.SigningKeyID() != KeyID(newSecret) || step1.SigningKeyID() != KeyID(secret) {
		t.Fatal("the signing key id is not the signing key's")
	}
}

// TestLeewayToleratesClockSkew: replicas whose clocks differ by less than the leeway accept
// each other's tokens at both ends of their life; past the leeway they do not.
func TestLeewayToleratesClockSkew(t *testing.T) {
	start := time.Now()
	mk := func(leeway time.Duration, at time.Time) *Issuer {
		i, err := NewIssuer(Options{Secret: secret, Issuer: "kub-demo", TTL: time.Minute, Leeway: leeway})
		if err != nil {
			t.Fatal(err)
		}
		i.now = func() time.Time { return at }
		return i
	}
	signed, _ := mk(0, start).Issue("u1") // by a replica whose clock is 2 s ahead
	for name, c := range map[string]struct {
		leeway time.Duration
		at     time.Time
		ok     bool
	}{
		"2 s behind, 30 s leeway":     {30 * time.Second, start.Add(-2 * time.Second), true},
		"2 s behind, no leeway":       {0, start.Add(-2 * time.Second), false},
		"2 s after exp, 30 s leeway":  {30 * time.Second, start.Add(time.Minute + 2*time.Second), true},
		"40 s after exp, 30 s leeway": {30 * time.Second, start.Add(time.Minute + 40*time.Second), false},
		"40 s behind, 30 s leeway":    {30 * time.Second, start.Add(-40 * time.Second), false},
		"31 s after exp, 30 s leeway": {30 * time.Second, start.Add(time.Minute + 31*time.Second), false},
	} {
		t.Run(name, func(t *testing.T) {
			i := mk(c.leeway, c.at)
			for range 2 { // the second time from what Verify remembers
				if _, err := i.Verify(signed); (err == nil) != c.ok {
					t.Fatalf("Verify: %v, want ok=%v", err, c.ok)
				}
			}
		})
	}
}

func TestTokenNamingAnUnknownKeyIsRefused(t *testing.T) {
	i := newIssuer(t)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"uid": "u1", "sub": "u1", "iss": "kub-demo",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "0000000000000000"
	signed, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.Verify(signed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token naming an unknown key: %v, want ErrInvalid", err)
	}
}
