package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/filestore"
)

// FuzzCredentials: any signup or login body is answered with JSON and one of the statuses the
// contract allows; never a 500. A 201 signup can then log in with the same body.
func FuzzCredentials(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@b.c","password":"pw"}`, `{"email":" ","password":"pw"}`, `{"email":"a@b.c"}`,
		`{"email":1,"password":2}`, `{"email":"a@b.c","password":"pw"} x`, `[]`, ``, "{\"email\":\"\xff\",\"password\":\"p\"}",
		`{"email":"test@gmail.com","password":"testers"}`, `{"email":"a@b.c","password":"\u0000"}`,
	} {
		f.Add(seed)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body string) {
		store, err := filestore.Open(t.TempDir(), log, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		handler := Routes(Deps{Log: log, Probes: &httpserver.Probes{}, Metrics: metrics.New(), Accounts: accounts.New(store, workingAuth(), demo, log)})
		send := func(path string) int {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
			var answer map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || (answer["message"] == nil && answer["token"] == nil) {
				t.Fatalf("POST %s %q: %d %q is not a JSON answer", path, body, rec.Code, rec.Body)
			}
			return rec.Code
		}
		switch status := send("/signup"); status {
		case http.StatusCreated:
			if login := send("/login"); login != http.StatusOK {
				t.Fatalf("signed up with %q but login answered %d", body, login)
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("signup %q: unexpected %d", body, status)
		}
	})
}
