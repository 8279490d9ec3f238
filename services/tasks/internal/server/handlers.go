package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/store"
)

// Tasks is the task store; *store.Store is one.
type Tasks interface {
	Append(store.Task) error
	List() ([]store.Task, error)
}

// Verifier checks tokens with the auth service; *authapi.Client is one.
type Verifier interface {
	VerifyToken(ctx context.Context, token string) (uid string, err error)
}

var (
	_ Tasks    = (*store.Store)(nil)
	_ Verifier = (*authapi.Client)(nil)
)

// Messages that clients of the original service match on: keep them as they are.
var (
	errNoToken        = web.NewError(http.StatusUnauthorized, "No token provided.")
	errCouldNotVerify = web.NewError(http.StatusUnauthorized, "Could not verify token.")
	errTitleMissing   = web.NewError(http.StatusUnprocessableEntity, "A title needs to be specified!")
	errTitleTooLong   = web.NewError(http.StatusUnprocessableEntity, fmt.Sprintf("A title can have at most %d characters.", maxTitleChars))
	errTextTooLong    = web.NewError(http.StatusUnprocessableEntity, fmt.Sprintf("A text can have at most %d characters.", maxTextChars))
)

// Limits on one task, well under the 1 MiB body limit: a task list is read whole by every
// client, so one huge task would slow every GET.
const (
	maxTitleChars = 500
	maxTextChars  = 10_000
)

// validateTask checks what a stored task must be.
func validateTask(task store.Task) error {
	switch {
	case strings.TrimSpace(task.Title) == "":
		return errTitleMissing
	case utf8.RuneCountInString(task.Title) > maxTitleChars:
		return errTitleTooLong
	case utf8.RuneCountInString(task.Text) > maxTextChars:
		return errTextTooLong
	}
	return nil
}

// authenticate checks the request's bearer token with auth and returns the user id.
// missing is the error for a request with no Authorization header at all.
func authenticate(r *http.Request, auth Verifier, missing error) (string, error) {
	header := strings.TrimSpace(r.Header.Get("Authorization"))
	if header == "" {
		return "", missing
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", errCouldNotVerify
	}
	uid, err := auth.VerifyToken(r.Context(), token)
	switch {
	case errors.Is(err, authapi.ErrRejected):
		return "", errCouldNotVerify
	case errors.Is(err, authapi.ErrUnavailable):
		return "", web.Unavailable("The auth service is unavailable, so the token could not be checked. Try again in a moment.", err)
	case err != nil:
		return "", err
	}
	return uid, nil
}

type taskListResponse struct {
	Message string       `json:"message"`
	Tasks   []store.Task `json:"tasks"`
}

func handleTaskList(tasks Tasks, auth Verifier) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := authenticate(r, auth, errNoToken); err != nil {
			return err
		}
		list, err := tasks.List()
		if err != nil {
			return &web.Error{Status: http.StatusInternalServerError, Message: "Could not load the tasks.", Err: err}
		}
		if list == nil {
			list = []store.Task{}
		}
		web.Respond(w, http.StatusOK, taskListResponse{Message: "Tasks loaded.", Tasks: list})
		return nil
	}
}

type taskCreateResponse struct {
	Message     string     `json:"message"`
	CreatedTask store.Task `json:"createdTask"`
}

func handleTaskCreate(tasks Tasks, auth Verifier) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := authenticate(r, auth, errCouldNotVerify); err != nil {
			return err
		}
		task, err := web.Decode[store.Task](w, r)
		if err != nil {
			return err
		}
		if err := validateTask(task); err != nil {
			return err
		}
		if err := tasks.Append(task); err != nil {
			return &web.Error{Status: http.StatusInternalServerError, Message: "Could not store the task.", Err: err}
		}
		web.Respond(w, http.StatusCreated, taskCreateResponse{Message: "Task stored.", CreatedTask: task})
		return nil
	}
}
