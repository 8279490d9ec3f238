package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

// Verifier checks tokens with the auth service; *authapi.Client is one.
type Verifier interface {
	VerifyToken(ctx context.Context, token string) (uid string, err error)
}

var _ Verifier = (*authapi.Client)(nil)

// Messages that clients of the original service match on: keep them as they are.
var (
	errNoToken        = web.NewError(http.StatusUnauthorized, "No token provided.")
	errCouldNotVerify = web.NewError(http.StatusUnauthorized, "Could not verify token.")
	errTitleMissing   = web.NewError(http.StatusUnprocessableEntity, "A title needs to be specified!")
	errTitleTooLong   = web.NewError(http.StatusUnprocessableEntity, fmt.Sprintf("A title can have at most %d characters.", maxTitleChars))
	errTextTooLong    = web.NewError(http.StatusUnprocessableEntity, fmt.Sprintf("A text can have at most %d characters.", maxTextChars))
	errNULCharacter   = web.NewError(http.StatusUnprocessableEntity, `A title or text cannot hold the NUL character (\u0000).`)
	errTaskTooLarge   = web.NewError(http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"This task would take more than %d KiB once stored (characters such as control characters take six bytes each).", tasks.MaxRecordBytes>>10))
	errStoreFull = web.NewError(http.StatusInsufficientStorage, "No more tasks can be stored here: the task store is at its size limit.")
)

// storeError maps what the store refuses to an answer.
func storeError(err error, action string) error {
	var quota *tasks.QuotaError
	switch {
	case errors.Is(err, tasks.ErrTooLarge):
		return errTaskTooLarge
	case errors.As(err, &quota):
		return web.NewError(http.StatusInsufficientStorage, "Your task quota is used up: "+quota.Reached+".")
	case errors.Is(err, tasks.ErrFull):
		return errStoreFull
	case errors.Is(err, tasks.ErrUnavailable):
		// Quiet: the store logged why, once; one error line per request would bury it.
		return web.Busy("The task store is unavailable. Try again in a moment.", err)
	}
	return &web.Error{Status: http.StatusInternalServerError, Message: "Could not " + action + ".", Err: err}
}

// Limits on one task, under the 64 KiB body limit: a task list is read whole by every
// client, so one huge task would slow every GET.
const (
	maxTitleChars = 500
	maxTextChars  = 10_000
)

// validateTask checks what a stored task must be. NUL is refused in both stores: PostgreSQL
// text cannot hold it, so a task with one, kept as json, would break every query that reads
// its title or text as text (task->>'title'), and moving a file store to PostgreSQL would
// carry it there.
func validateTask(task tasks.Task) error {
	switch {
	case strings.ContainsRune(task.Title, 0) || strings.ContainsRune(task.Text, 0):
		return errNULCharacter
	case strings.TrimSpace(task.Title) == "":
		return errTitleMissing
	case utf8.RuneCountInString(task.Title) > maxTitleChars:
		return errTitleTooLong
	case utf8.RuneCountInString(task.Text) > maxTextChars:
		return errTextTooLong
	}
	return nil
}

// keyRefusedMessage answers while auth refuses this service's AUTH_API_KEY: no retry mends
// that, so the client is told who can.
const keyRefusedMessage = "The tasks service is misconfigured: the auth service refuses its AUTH_API_KEY, " +
	"which must be the same in auth, users and tasks. Retrying will not help; an operator must fix the setting."

// authenticate checks the request's bearer token with auth and returns the user id.
// missing is the error for a request with no Authorization header at all.
func authenticate(r *http.Request, auth Verifier, missing error) (string, error) {
	header := strings.TrimSpace(r.Header.Get("Authorization"))
	if header == "" {
		return "", missing
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || !authapi.TokenShaped(token) {
		return "", errCouldNotVerify
	}
	uid, err := auth.VerifyToken(r.Context(), token)
	switch {
	case errors.Is(err, authapi.ErrRejected):
		return "", errCouldNotVerify
	case errors.Is(err, authapi.ErrBusy):
		return "", web.Busy("The auth service is busy, so the token could not be checked. Try again in a moment.", err)
	case errors.Is(err, authapi.ErrKeyRefused):
		return "", web.Unavailable(keyRefusedMessage, err)
	case errors.Is(err, authapi.ErrUnavailable):
		// Quiet: the outage is logged when it begins and ends (watchedVerifier), not per request.
		return "", &web.Error{Status: http.StatusServiceUnavailable, Message: "The auth service is unavailable, so the token could not be checked. Try again in a moment.",
			Err: err, RetryAfter: time.Second, Quiet: true}
	case err != nil:
		return "", err
	}
	return uid, nil
}

// maxPageSize bounds ?limit=.
const maxPageSize = 1000

// page reads ?limit= and ?offset=. Without either, the whole list is one page.
type page struct {
	paged         bool
	limit, offset int
}

func parsePage(r *http.Request) (page, error) {
	if r.URL.RawQuery == "" {
		return page{limit: maxPageSize}, nil // the course's plain list: no query map to make
	}
	q := r.URL.Query()
	p := page{paged: q.Has("limit") || q.Has("offset"), limit: maxPageSize}
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return p, web.NewError(http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d.", maxPageSize))
		}
		p.limit = n
	}
	if v := q.Get("offset"); q.Has("offset") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, web.NewError(http.StatusBadRequest, "offset must be a whole number from 0 up.")
		}
		p.offset = n
	}
	return p, nil
}

// listPrefix starts every list answer.
var listPrefix = []byte(`{"message":"Tasks loaded.","tasks":[`)

// handleTaskList answers the list, or a page of it, from the tasks as the store keeps them
// encoded: the body is the same bytes json.Marshal of the answer would write, with
// "total", "offset" and "limit" only when the client asked for a page, so the plain answer
// stays the original's.
func handleTaskList(store tasks.Store, auth Verifier) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		uid, err := authenticate(r, auth, errNoToken)
		if err != nil {
			return err
		}
		p, err := parsePage(r)
		if err != nil {
			return err
		}
		offset, limit := 0, math.MaxInt
		if p.paged {
			offset, limit = p.offset, p.limit
		}
		list, total, err := store.Page(r.Context(), uid, offset, limit)
		if err != nil {
			return storeError(err, "load the tasks")
		}
		end := make([]byte, 0, 64)
		end = append(end, ']')
		if p.paged {
			end = append(end, `,"total":`...)
			end = strconv.AppendInt(end, int64(total), 10)
			end = append(end, `,"offset":`...)
			end = strconv.AppendInt(end, int64(p.offset), 10)
			end = append(end, `,"limit":`...)
			end = strconv.AppendInt(end, int64(p.limit), 10)
		}
		end = append(end, '}')
		web.RespondEncoded(w, http.StatusOK, append(append([][]byte{listPrefix}, list...), end)...)
		return nil
	}
}

type taskCreateResponse struct {
	Message     string     `json:"message"`
	CreatedTask tasks.Task `json:"createdTask"`
}

func handleTaskCreate(store tasks.Store, auth Verifier) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		uid, err := authenticate(r, auth, errCouldNotVerify)
		if err != nil {
			return err
		}
		task, err := web.Decode[tasks.Task](w, r)
		if err != nil {
			return err
		}
		if err := validateTask(task); err != nil {
			return err
		}
		if err := store.Append(r.Context(), uid, task); err != nil {
			return storeError(err, "store the task")
		}
		web.Respond(w, http.StatusCreated, taskCreateResponse{Message: "Task stored.", CreatedTask: task})
		return nil
	}
}
