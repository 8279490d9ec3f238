package requestid

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddlewareKeepsASensibleIDAndReplacesOthers(t *testing.T) {
	var seen string
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = From(r.Context()) }))
	tests := []struct {
		sent string
		keep bool
	}{
		{"smoke-1732-login", true},
		{"4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7", true},
		{"", false},
		{"has spaces", false},
		{"new\nline", false},
		{`{"json":"injection"}`, false},
		{strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/", nil)
		if tt.sent != "" {
			req.Header.Set(Header, tt.sent)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(Header)
		if got != seen || got == "" {
			t.Fatalf("sent %q: response id %q, handler saw %q", tt.sent, got, seen)
		}
		if (got == tt.sent) != tt.keep {
			t.Errorf("sent %q, got %q; keep = %v", tt.sent, got, tt.keep)
		}
	}
}

func TestLogLinesOfARequestCarryItsID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "tasks")
	log.InfoContext(With(t.Context(), "abc-123"), "request")
	log.Info("no request here")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, second map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if first["requestId"] != "abc-123" || first["service"] != "tasks" {
		t.Errorf("line with a request context: %s", lines[0])
	}
	if _, ok := second["requestId"]; ok {
		t.Errorf("line without a request context has an id: %s", lines[1])
	}
}
