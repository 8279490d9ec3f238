package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: any body either decodes into a value that survives a JSON round trip, or is
// refused with a 400 or 413 and a message; nothing panics.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@b.c","password":"pw"}`, `{"email":`, `[]`, `null`, `"x"`, `{"email":1}`,
		`{"email":"a"}{}`, "{\"email\":\"\xff\"}", `{"email":"\ud800"}`, ` `, `{"EMAIL":"case"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		got, err := Decode[credentials](httptest.NewRecorder(), r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge) || e.Message == "" {
				t.Fatalf("Decode(%q) error = %v, want a 400 or 413 with a message", body, err)
			}
			return
		}
		if !utf8.ValidString(got.Email) || !utf8.ValidString(got.Password) {
			t.Fatalf("Decode(%q) let invalid UTF-8 through: %q", body, got)
		}
		again, _ := json.Marshal(got)
		var back credentials
		if err := json.Unmarshal(again, &back); err != nil || back != got {
			t.Fatalf("round trip of %q: %q, %v", body, back, err)
		}
	})
}
