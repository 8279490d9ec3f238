package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/authapi"
)

// FuzzAuthRequests: any body sent to any of auth's routes is answered with JSON and a status
// the client knows how to read; never a 500, never a token for a password that was not hashed.
func FuzzAuthRequests(f *testing.F) {
	paths := []string{authapi.PathHashPassword, authapi.PathIssueToken, authapi.PathVerifyToken}
	for i, seed := range []string{
		`{"password":"pw"}`, `{"password":"pw","hashedPassword":"","uid":"u"}`, `{"token":"abc"}`,
		`{"password":""}`, `{"token":"eyJhbGciOiJub25lIn0.eyJ1aWQiOiJ1In0."}`, `{"password":1}`, `{`, ``,
	} {
		f.Add(uint8(i%len(paths)), seed)
	}
	srv, _ := newAuth(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		path := paths[int(route)%len(paths)]
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			t.Fatalf("%s %q: %d with a body that is not JSON", path, body, resp.StatusCode)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if path == authapi.PathIssueToken || path == authapi.PathVerifyToken {
				t.Fatalf("%s %q succeeded without a real hash or token: %v", path, body, answer)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("%s %q: unexpected %d %v", path, body, resp.StatusCode, answer)
		}
	})
}
