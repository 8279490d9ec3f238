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
	i, err := NewIssuer(secret, "kub-demo", time.Hour)
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
	if _, err := NewIssuer([]byte("too short"), "kub-demo", time.Hour); err == nil {
		t.Fatal("a 9-byte secret was accepted")
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
