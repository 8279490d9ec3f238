package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// AccessMessage is the message of AccessLog's lines.
const AccessMessage = "request"

// AccessLog logs one line per request: method, path, status, size and duration.
// It never logs headers, query strings or bodies, where tokens and passwords travel.
// Requests for the quiet paths (probes and scrapes, every few seconds) log at debug level,
// so they do not bury the requests people make.
func AccessLog(log *slog.Logger, quiet ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			// The metrics middleware before this one wraps the writer already: one wrapper
			// per request serves both.
			ww, wrapped := w.(middleware.WrapResponseWriter)
			if !wrapped {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			next.ServeHTTP(ww, r)
			level := slog.LevelInfo
			if slices.Contains(quiet, r.URL.Path) {
				level = slog.LevelDebug
			}
			// The handler directly, not log.LogAttrs: the Logger would take the caller's
			// program counter with runtime.Callers on every line, for a source no handler
			// here writes (a sixth of this line's cost in a make bench profile).
			h, ctx := log.Handler(), r.Context()
			if !h.Enabled(ctx, level) {
				return
			}
			now := time.Now()
			record := slog.NewRecord(now, level, AccessMessage, 0)
			record.AddAttrs(
				slog.String("method", clip(r.Method, maxLoggedMethod)),
				slog.String("path", loggedPath(r)),
				slog.Int("status", ww.Status()),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Float64("ms", float64(now.Sub(start).Microseconds())/1000))
			h.Handle(ctx, record)
		})
	}
}

// What a client controls is clipped in log lines, so that a made-up 30 KB method or path does
// not become a 30 KB line per request.
const (
	maxLoggedMethod = 16
	maxLoggedPath   = 256
	// An unknown path's first segment: enough to see a typo.
	maxUnmatchedPath = 32
)

// loggedPath is r's path as the access line shows it: clipped, and only its first segment
// when it matched no route (a client of the original's API may send a password or a token
// in a path: /token/<hash>/<password>).
func loggedPath(r *http.Request) string {
	path := r.URL.Path
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() == "" {
		if i := strings.IndexByte(path[min(1, len(path)):], '/'); i >= 0 {
			path = path[:i+1] + "/…"
		}
		return clip(path, maxUnmatchedPath)
	}
	return clip(path, maxLoggedPath)
}

// clip returns s cut to at most n bytes, marked with "…" when it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Recover turns a panic in a handler into a logged JSON 500 instead of a dropped connection.
// It is the innermost middleware, so the 500 is counted and logged like any answer; its log
// line carries the request's id (through the context) and the stack.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.ErrorContext(r.Context(), "handler panicked", "method", clip(r.Method, maxLoggedMethod),
						"path", clip(r.URL.Path, maxLoggedPath), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					Respond(w, http.StatusInternalServerError, MessageBody{Message: "Internal server error."})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
