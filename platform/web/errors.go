// Package web holds what every kub-demo HTTP handler shares: JSON bodies in and out,
// and one place where an error becomes a status code and a {"message": …} body.
package web

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Error is an error with the status and the message a client should see.
// Err, when set, is the internal cause: it is logged, never sent.
type Error struct {
	Status  int
	Message string
	Err     error
	// RetryAfter, when set, is sent as Retry-After (in whole seconds, at least 1).
	RetryAfter time.Duration
	// Quiet 5xx answers are not logged as failures: they are load being shed (a full queue,
	// a caller that gave up), which metrics count, and a flood must not turn into a flood of
	// error lines.
	Quiet bool
}

// NewError returns an Error that tells the client message with status.
func NewError(status int, message string) *Error {
	return &Error{Status: status, Message: message}
}

// Unavailable is a 503: a dependency (auth, the disk) cannot serve now. cause is logged.
func Unavailable(message string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Message: message, Err: cause}
}

// Busy is a 503 that will pass soon (at capacity, a store being replaced): Retry-After one
// second, and not logged as an error (Quiet), since the cause was logged once where it arose
// or is the load itself.
func Busy(message string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Message: message, Err: cause, RetryAfter: time.Second, Quiet: true}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// MessageBody is the shape of every error body and of plain acknowledgements.
type MessageBody struct {
	Message string `json:"message"`
}

// HandlerFunc is an http.HandlerFunc that may fail; Handle maps its error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle turns h into an http.Handler: a returned *Error is answered with its status and
// message; anything else is logged and answered with a bare 500, so internals never leak.
func Handle(log *slog.Logger, h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			RespondError(w, r, log, err)
		}
	}
}

// RespondError writes err as a JSON error body. Server-side failures are logged.
func RespondError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Message: "Internal server error.", Err: err}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(math.Ceil(e.RetryAfter.Seconds()), 1))))
	}
	if e.Status >= 500 && !e.Quiet {
		log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", clip(r.Method, maxLoggedMethod)), slog.String("path", clip(r.URL.Path, maxLoggedPath)),
			slog.Int("status", e.Status), slog.String("error", e.Error()))
	}
	Respond(w, e.Status, MessageBody{Message: e.Message})
}

// NotFound answers unknown routes with a JSON 404.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Respond(w, http.StatusNotFound, MessageBody{Message: fmt.Sprintf("No route for %s %s.", clip(r.Method, maxLoggedMethod), clip(r.URL.Path, maxLoggedPath))})
}

// MethodNotAllowed answers a known route asked with the wrong method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	Respond(w, http.StatusMethodNotAllowed, MessageBody{Message: fmt.Sprintf("Method %s is not allowed on %s.", clip(r.Method, maxLoggedMethod), clip(r.URL.Path, maxLoggedPath))})
}
