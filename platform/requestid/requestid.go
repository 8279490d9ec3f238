// Package requestid gives every request one id, across services: taken from the client's
// X-Request-ID or made up, returned in the response, sent on every call to auth, and written
// in every log line of that request. Following one id through the logs of each service (or
// `kubectl logs` of each pod) shows the request's whole path.
package requestid

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
)

// Header carries the id between client and services.
const Header = "X-Request-ID"

// maxLen bounds an id taken from a client.
const maxLen = 128

type contextKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// From returns the id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(contextKey{}).(string)
	return id
}

// New makes an id: 26 random base32 characters.
func New() string { return rand.Text() }

// Middleware takes the request's id from its X-Request-ID header when it is a sensible one
// (up to 128 characters of letters, digits and -_.:), or makes one, puts it in the request's
// context, and sets it on the response.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !valid(id) {
			id = New()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
	})
}

func valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// LogHandler wraps h so that every record logged with a request's context carries its id
// as "requestId".
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
