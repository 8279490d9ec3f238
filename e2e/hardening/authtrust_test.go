package hardening

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/harness/scrape"
)

// madeUpBcryptHash is a well-formed bcrypt hash at cost: random salt and digest. It is what a
// caller forging a login sends (auth cannot tell it from a real one until it runs bcrypt).
func madeUpBcryptHash(cost int) string {
	alphabet := base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)
	salt, digest := make([]byte, 16), make([]byte, 23)
	rand.Read(salt)
	rand.Read(digest)
	return fmt.Sprintf("$2a$%02d$%s%s", cost, alphabet.EncodeToString(salt), alphabet.EncodeToString(digest))
}

// TestAuthTrustsNoCaller calls auth directly, as anything that reaches its port could: without
// the service credential, or with a wrong one, every route answers 401 with a
// WWW-Authenticate header and mints nothing, not even a token for uid "admin" over a hash the
// caller made itself. With the credential, a hash of a bcrypt cost above BCRYPT_COST is
// refused at once (4xx in under 100 ms), where running it (cost 16: seconds of CPU) would let
// any caller stall auth.
func TestAuthTrustsNoCaller(t *testing.T) {
	s := startSystem(t)
	forged := map[string]any{"password": "pw", "hashedPassword": madeUpBcryptHash(4), "uid": "admin"}
	bodies := map[string]string{
		"/token":           mustJSON(forged),
		"/hashed-password": `{"password":"pw"}`,
		"/verify-token": `{"token":"` + forge(t, jwt.SigningMethodHS256, []byte("not-the-key-not-the-key-not-the-key!"),
			jwt.MapClaims{"uid": "admin", "sub": "admin", "iss": tokenIssuer, "exp": time.Now().Add(time.Hour).Unix()}) + `"}`,
	}
	credentials := map[string]string{
		"no Authorization":           "",
		"empty Bearer":               "Bearer ",
		"a wrong key":                "Bearer the-wrong-service-credential-0123456789abcdef",
		"the key with one more byte": "Bearer " + harness.APIKey + "x",
		"the key cut by one byte":    "Bearer " + harness.APIKey[:len(harness.APIKey)-1],
		"the key as Basic":           "Basic " + base64.StdEncoding.EncodeToString([]byte(harness.APIKey)),
		"the JWT secret":             "Bearer " + jwtSecret,
	}
	okBefore := answeredOK(t, s.auth)
	refused := func(t *testing.T, path, body, authorization string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.auth.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := harness.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(resp)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" ||
			strings.Contains(raw, "token\":") || strings.Contains(raw, "hashedPassword") || strings.Contains(raw, "uid") {
			t.Errorf("POST %s: %d (WWW-Authenticate %q) %s, want 401 with WWW-Authenticate and nothing minted",
				path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(raw))
		}
	}
	for path, body := range bodies {
		for name, authorization := range credentials {
			t.Run(path+" with "+name, func(t *testing.T) { refused(t, path, body, authorization) })
		}
	}
	minted := answeredOK(t, s.auth) - okBefore
	figure(t, "auth-trust", "%d calls without the right credential: each 401 with WWW-Authenticate; auth answered 200 to %v of them",
		len(bodies)*len(credentials), minted)
	if minted != 0 {
		t.Errorf("auth answered %v requests with 200 to callers without the credential", minted)
	}

	// The key is required as a Bearer credential: the bare key, or the key under another
	// scheme, is not "Authorization: Bearer <AUTH_API_KEY>".
	for path, body := range bodies {
		t.Run(path+" with the key and no scheme", func(t *testing.T) { refused(t, path, body, harness.APIKey) })
		t.Run(path+" with the key as a Token", func(t *testing.T) { refused(t, path, body, "Token "+harness.APIKey) })
	}

	// With the credential: a hash of a cost above BCRYPT_COST (4 here) is refused without
	// running bcrypt on it.
	for _, cost := range []int{16, 31} {
		start := time.Now()
		a, err := harness.Do("POST", s.auth.URL+"/token", harness.APIKey,
			map[string]any{"password": "pw", "hashedPassword": madeUpBcryptHash(cost), "uid": "admin"})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		figure(t, "auth-cost", "a cost-%d hash with the credential: %d %s in %s", cost, a.Status, a.Raw, ms(took))
		if a.Status < 400 || a.Status >= 500 || strings.Contains(a.Raw, "token\":") {
			t.Errorf("a cost-%d hash: %d %s, want a 4xx and no token", cost, a.Status, a.Raw)
		}
		// bcrypt at cost 16 alone takes seconds: a second leaves room for a busy machine.
		if took > time.Second {
			t.Errorf("a cost-%d hash took %s to refuse, want well under the seconds bcrypt would take", cost, took)
		}
	}
}

// answeredOK is how many calls to auth's three routes it has answered 200.
func answeredOK(t *testing.T, auth *harness.Process) float64 {
	t.Helper()
	metrics, total := scrape.Scrape(t, auth.MetricsURL), 0.0
	for _, route := range []string{"/token", "/hashed-password", "/verify-token"} {
		n, _ := metrics.Value("http_requests_total", map[string]string{"route": route, "code": "200"})
		total += n
	}
	return total
}
