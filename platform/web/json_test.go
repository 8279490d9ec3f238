package web

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: decodes
		want       credentials
	}{
		{"object", `{"email":"a@b.c","password":"pw"}`, 0, credentials{"a@b.c", "pw"}},
		{"unknown fields ignored", `{"email":"a@b.c","extra":[1,2]}`, 0, credentials{Email: "a@b.c"}},
		{"empty body is an empty object", ``, 0, credentials{}},
		{"blank body is an empty object", " \n", 0, credentials{}},
		{"broken JSON", `{"email":`, http.StatusBadRequest, credentials{}},
		{"not JSON", `email=a&password=b`, http.StatusBadRequest, credentials{}},
		{"array", `[{"email":"a"}]`, http.StatusBadRequest, credentials{}},
		{"null", `null`, http.StatusBadRequest, credentials{}},
		{"string", `"hello"`, http.StatusBadRequest, credentials{}},
		{"wrong type", `{"email":42}`, http.StatusBadRequest, credentials{}},
		{"trailing data", `{"email":"a"} {"email":"b"}`, http.StatusBadRequest, credentials{}},
		{"trailing garbage", `{"email":"a"}x`, http.StatusBadRequest, credentials{}},
		{"invalid UTF-8", "{\"email\":\"\xff\xfe\"}", http.StatusBadRequest, credentials{}},
		{"too large", `{"email":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, credentials{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			got, err := Decode[credentials](httptest.NewRecorder(), r)
			if tt.wantStatus == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("Decode = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != tt.wantStatus || e.Message == "" {
				t.Fatalf("Decode error = %v, want status %d with a message", err, tt.wantStatus)
			}
		})
	}
}

func TestHandleMapsErrorsToJSON(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantMessage string
	}{
		{"client error", NewError(http.StatusConflict, "Exists."), http.StatusConflict, "Exists."},
		{"wrapped client error", errors.Join(NewError(http.StatusTeapot, "Tea.")), http.StatusTeapot, "Tea."},
		{"internal error is not leaked", errors.New("disk on fire at /var/lib/x"), http.StatusInternalServerError, "Internal server error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handle(log, func(http.ResponseWriter, *http.Request) error { return tt.err })(rec, httptest.NewRequest("GET", "/", nil))
			var body MessageBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			if rec.Code != tt.wantStatus || body.Message != tt.wantMessage {
				t.Fatalf("got %d %q, want %d %q", rec.Code, body.Message, tt.wantStatus, tt.wantMessage)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q", ct)
			}
		})
	}
}

// TestMarshalWritesWhatJSONStringifyWrote: the bytes of the original's res.json (node's
// JSON.stringify of the same value): <, >, & and U+2028/U+2029 as themselves, a literal
// backslash-u kept as text, control characters as \u00XX, no newline at the end.
func TestMarshalWritesWhatJSONStringifyWrote(t *testing.T) {
	got, err := Marshal(struct {
		A string `json:"a"`
	}{"<>&\u2028\u2029 \\u2028 é \x01"})
	want := `{"a":"<>&` + "\u2028\u2029" + ` \\u2028 é \u0001"}`
	if err != nil || string(got) != want {
		t.Fatalf("Marshal = %q, %v; want %q", got, err, want)
	}
}
