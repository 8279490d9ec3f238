package web

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// AccessLog logs one line per request: method, path, status, size and duration.
// It never logs headers, query strings or bodies, where tokens and passwords travel.
func AccessLog(log *slog.Logger) func(http.Handler) http.Handler {
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
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", ww.Status()),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
		})
	}
}

// Recover turns a panic in a handler into a logged JSON 500 instead of a dropped connection.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
					Respond(w, http.StatusInternalServerError, MessageBody{Message: "Internal server error."})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
