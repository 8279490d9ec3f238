package hardening

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kub-demo/kub-demo/harness"
)

// forge signs claims as an attacker, or a stale or foreign issuer, would.
func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	signed, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestBadInputGetsA4xxJSONErrorAndChangesNothing sends every kind of bad request a client
// can make to the real services and checks each answer, then that no file changed.
func TestBadInputGetsA4xxJSONErrorAndChangesNothing(t *testing.T) {
	s := startSystem(t)
	token := harness.Login(t, s.users.URL, harness.DemoEmail, harness.DemoPassword) // the demo user now exists
	tasksFile, usersFile := filepath.Join(s.tasksFolder, "tasks.txt"), filepath.Join(s.usersFolder, "users.jsonl")
	if a := harness.Call(t, "POST", s.tasks.URL+"/tasks", token, map[string]string{"title": "the only task"}); a.Status != http.StatusCreated {
		t.Fatalf("setup POST: %d", a.Status)
	}
	tasksBefore, usersBefore := fileBytes(t, tasksFile), fileBytes(t, usersFile)

	now := time.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		var uid string
		// The demo user's real id, read from a real token, so only the changed claim is wrong.
		parsed, _, _ := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
		uid, _ = parsed.Claims.(jwt.MapClaims)["uid"].(string)
		c := jwt.MapClaims{"uid": uid, "sub": uid, "iss": tokenIssuer, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	secret := []byte(jwtSecret)
	// A token forged with the real key and claims passes: the cases below differ from it in one thing only.
	control := forge(t, jwt.SigningMethodHS256, secret, claims(nil))
	if a := harness.Call(t, "GET", s.tasks.URL+"/tasks", control, nil); a.Status != http.StatusOK {
		t.Fatalf("control token refused: %d %s", a.Status, a.Raw)
	}
	parts := strings.Split(control, ".")
	adminPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"uid":"admin","sub":"admin","iss":"kub-demo","exp":9999999999}`))
	flipped := []byte(parts[2])
	flipped[5] ^= 1

	const (
		missingCredentials = "An email and password needs to be specified!"
		couldNotVerify     = "Could not verify token."
		noToken            = "No token provided."
		titleMissing       = "A title needs to be specified!"
	)
	big := strings.Repeat("x", 1<<20)
	validTask := `{"title":"should not be stored","text":"x"}`
	users, tasks := s.users.URL, s.tasks.URL+"/tasks"
	bearer := func(tok string) string { return "Bearer " + tok }

	tests := []struct {
		name, method, url, authorization, body string
		want                                   int
		message                                string // "" means any non-empty message
	}{
		// users: bodies
		{"signup: broken JSON", "POST", users + "/signup", "", `{"email":`, 400, ""},
		{"signup: truncated JSON", "POST", users + "/signup", "", `{"email":"a@b.c","password":"p`, 400, ""},
		{"signup: array", "POST", users + "/signup", "", `[{"email":"a@b.c","password":"p"}]`, 400, ""},
		{"signup: string", "POST", users + "/signup", "", `"a@b.c"`, 400, ""},
		{"signup: number", "POST", users + "/signup", "", `42`, 400, ""},
		{"signup: null", "POST", users + "/signup", "", `null`, 400, ""},
		{"signup: email is a number", "POST", users + "/signup", "", `{"email":1,"password":"p"}`, 400, ""},
		{"signup: password is an array", "POST", users + "/signup", "", `{"email":"a@b.c","password":["p"]}`, 400, ""},
		{"signup: password is an object", "POST", users + "/signup", "", `{"email":"a@b.c","password":{"p":1}}`, 400, ""},
		{"signup: invalid UTF-8", "POST", users + "/signup", "", "{\"email\":\"\xc3\x28@b.c\",\"password\":\"p\"}", 400, ""},
		{"signup: trailing garbage", "POST", users + "/signup", "", `{"email":"a@b.c","password":"p"}xyz`, 400, ""},
		{"signup: two objects", "POST", users + "/signup", "", `{"email":"a@b.c","password":"p"}{"email":"c@d.e","password":"q"}`, 400, ""},
		{"signup: no email", "POST", users + "/signup", "", `{"password":"p"}`, 422, missingCredentials},
		{"signup: blank password", "POST", users + "/signup", "", `{"email":"a@b.c","password":"   "}`, 422, missingCredentials},
		{"signup: empty body", "POST", users + "/signup", "", ``, 422, missingCredentials},
		{"signup: 73-byte password", "POST", users + "/signup", "", `{"email":"a@b.c","password":"` + strings.Repeat("p", 73) + `"}`, 422, ""},
		{"signup: 300-character email", "POST", users + "/signup", "", `{"email":"` + strings.Repeat("e", 290) + `@b.c","password":"p"}`, 422, ""},
		{"signup: body over 64 KiB", "POST", users + "/signup", "", `{"email":"a@b.c","password":"` + big + `"}`, 413, ""},
		{"signup: the demo user again", "POST", users + "/signup", "", `{"email":"TEST@gmail.com","password":"other"}`, 409, ""},
		{"login: wrong password", "POST", users + "/login", "", `{"email":"test@gmail.com","password":"tester"}`, 401, "Invalid email or password."},
		{"login: unknown email", "POST", users + "/login", "", `{"email":"nobody@example.com","password":"testers"}`, 401, "Invalid email or password."},
		{"login: no password", "POST", users + "/login", "", `{"email":"test@gmail.com"}`, 422, missingCredentials},
		{"users: unknown route", "GET", users + "/users", "", ``, 404, ""},
		{"users: GET on /login", "GET", users + "/login", "", ``, 405, ""},

		// tasks: bodies, with a valid token
		{"task: broken JSON", "POST", tasks, bearer(token), `{"title":`, 400, ""},
		{"task: array", "POST", tasks, bearer(token), `[]`, 400, ""},
		{"task: title is a number", "POST", tasks, bearer(token), `{"title":7}`, 400, ""},
		{"task: text is a boolean", "POST", tasks, bearer(token), `{"title":"t","text":true}`, 400, ""},
		{"task: invalid UTF-8 title", "POST", tasks, bearer(token), "{\"title\":\"\xff\xfe\"}", 400, ""},
		{"task: trailing data", "POST", tasks, bearer(token), validTask + `,`, 400, ""},
		{"task: no title", "POST", tasks, bearer(token), `{"text":"x"}`, 422, titleMissing},
		{"task: blank title", "POST", tasks, bearer(token), `{"title":" \t ","text":"x"}`, 422, titleMissing},
		{"task: 501-character title", "POST", tasks, bearer(token), `{"title":"` + strings.Repeat("t", 501) + `"}`, 422, ""},
		{"task: NUL in the title", "POST", tasks, bearer(token), `{"title":"a\u0000b"}`, 422, `A title or text cannot hold the NUL character (\u0000).`},
		{"task: NUL in the text", "POST", tasks, bearer(token), `{"title":"t","text":"\u0000"}`, 422, ""},
		{"task: 10001-character text", "POST", tasks, bearer(token), `{"title":"t","text":"` + strings.Repeat("t", 10001) + `"}`, 422, ""},
		{"task: body over 64 KiB", "POST", tasks, bearer(token), `{"title":"t","text":"` + big + `"}`, 413, ""},
		{"tasks: unknown route", "GET", s.tasks.URL + "/task", bearer(token), ``, 404, ""},

		// tasks: Authorization headers
		{"GET without a header", "GET", tasks, "", ``, 401, noToken},
		{"POST without a header", "POST", tasks, "", validTask, 401, couldNotVerify},
		{"Basic scheme", "POST", tasks, "Basic dGVzdEBnbWFpbC5jb206dGVzdGVycw==", validTask, 401, couldNotVerify},
		{"Token scheme with a valid token", "POST", tasks, "Token " + token, validTask, 401, couldNotVerify},
		{"no scheme, bare token", "POST", tasks, token, validTask, 401, couldNotVerify},
		{"Bearer and nothing", "POST", tasks, "Bearer", validTask, 401, couldNotVerify},
		{"Bearer and spaces", "GET", tasks, "Bearer    ", ``, 401, ""},
		{"extra parts", "POST", tasks, bearer(token) + " extra", validTask, 401, couldNotVerify},
		{"the original's fixed token", "POST", tasks, bearer("abc"), validTask, 401, couldNotVerify},

		// tasks: forged and stale tokens
		{"JWT alg none", "POST", tasks, bearer(forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))), validTask, 401, couldNotVerify},
		{"JWT signed with another key", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS256, []byte("not-the-key-not-the-key-not-the-key!"), claims(nil))), validTask, 401, couldNotVerify},
		{"JWT HS512 with the real key", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS512, secret, claims(nil))), validTask, 401, couldNotVerify},
		{"JWT expired", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))), validTask, 401, couldNotVerify},
		{"JWT without expiry", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))), validTask, 401, couldNotVerify},
		{"JWT not yet valid", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))), validTask, 401, couldNotVerify},
		{"JWT from another issuer", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }))), validTask, 401, couldNotVerify},
		{"JWT uid is not its subject", "POST", tasks, bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["uid"] = "admin" }))), validTask, 401, couldNotVerify},
		{"JWT tampered payload", "POST", tasks, bearer(parts[0] + "." + adminPayload + "." + parts[2]), validTask, 401, couldNotVerify},
		{"JWT tampered signature", "POST", tasks, bearer(parts[0] + "." + parts[1] + "." + string(flipped)), validTask, 401, couldNotVerify},
		{"JWT signature removed", "POST", tasks, bearer(parts[0] + "." + parts[1] + "."), validTask, 401, couldNotVerify},
		{"JWT tampered, on GET", "GET", tasks, bearer(parts[0] + "." + adminPayload + "." + parts[2]), ``, 401, couldNotVerify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			resp, err := harness.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct{ Message string }
			if err := json.Unmarshal(raw, &body); err != nil || body.Message == "" {
				t.Fatalf("%d %q is not a JSON error with a message", resp.StatusCode, raw)
			}
			if resp.StatusCode != tt.want || (tt.message != "" && body.Message != tt.message) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body.Message, tt.want, tt.message)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	t.Logf("%d bad requests, each answered with its 4xx JSON error", len(tests))

	if !bytes.Equal(fileBytes(t, tasksFile), tasksBefore) {
		t.Errorf("tasks.txt changed")
	}
	if !bytes.Equal(fileBytes(t, usersFile), usersBefore) {
		t.Errorf("users.jsonl changed")
	}
	harness.AssertNoSecrets(t, s.processes(), harness.DemoPassword, "tester", token, control, jwtSecret, "$2a$")
}
