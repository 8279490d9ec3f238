package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
)

var (
	errPasswordMissing = web.NewError(http.StatusUnprocessableEntity, "A password needs to be specified!")
	errPasswordTooLong = web.NewError(http.StatusUnprocessableEntity, "A password can have at most 72 bytes.")
	errUIDMissing      = web.NewError(http.StatusUnprocessableEntity, "A user id (uid) needs to be specified!")
	errBadCredentials  = web.NewError(http.StatusUnauthorized, "Invalid credentials.")
	errCouldNotVerify  = web.NewError(http.StatusUnauthorized, "Could not verify token.")
	errCostRefused     = web.NewError(http.StatusUnprocessableEntity, "The hash was made at a higher bcrypt cost than this service accepts.")
)

// hashingError maps what the hasher refuses: a full queue is a 503 to try again in a moment
// (the caller's client sees auth as unavailable, for now), and a caller that has gone needs
// no answer, but gets one in case it is still reading.
func hashingError(err error) error {
	switch {
	case errors.Is(err, password.ErrBusy):
		return web.Busy("Password hashing is at capacity. Try again in a moment.", err)
	case errors.Is(err, password.ErrCostNotAccepted):
		return errCostRefused
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &web.Error{Status: http.StatusServiceUnavailable, Message: "The caller gave up before its turn.", Err: err, Quiet: true}
	}
	return err
}

func handleHashPassword(hasher Hasher) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := web.Decode[authapi.HashRequest](w, r)
		if err != nil {
			return err
		}
		if req.Password == "" {
			return errPasswordMissing
		}
		if len(req.Password) > authapi.MaxPasswordBytes {
			return errPasswordTooLong
		}
		hash, err := hasher.Hash(r.Context(), req.Password)
		if err != nil {
			return hashingError(err)
		}
		web.Respond(w, http.StatusOK, authapi.HashResponse{HashedPassword: hash})
		return nil
	}
}

func handleIssueToken(log *slog.Logger, hasher Hasher, issuer Issuer) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := web.Decode[authapi.TokenRequest](w, r)
		if err != nil {
			return err
		}
		if req.Password == "" {
			return errPasswordMissing
		}
		if req.UID == "" {
			return errUIDMissing
		}
		match, err := hasher.Matches(r.Context(), req.HashedPassword, req.Password)
		if err != nil {
			return hashingError(err)
		}
		if !match {
			log.InfoContext(r.Context(), "token refused: password does not match", "uid", req.UID)
			return errBadCredentials
		}
		signed, err := issuer.Issue(req.UID)
		if err != nil {
			return err
		}
		web.Respond(w, http.StatusOK, authapi.TokenResponse{Token: signed})
		return nil
	}
}

func handleVerifyToken(log *slog.Logger, issuer Issuer) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := web.Decode[authapi.VerifyRequest](w, r)
		if err != nil {
			return err
		}
		if req.Token == "" {
			// users' and tasks' readiness ping (authapi's Ping): the refusal is the answer it
			// wants, and no client's token is ever empty here (tasks refuses those itself).
			log.DebugContext(r.Context(), "token refused: empty (a readiness ping)")
			return errCouldNotVerify
		}
		uid, err := issuer.Verify(req.Token)
		if err != nil {
			// The reason (expired, bad signature…) helps an operator; the token itself is never logged.
			log.InfoContext(r.Context(), "token refused", "reason", err.Error())
			return errCouldNotVerify
		}
		web.Respond(w, http.StatusOK, authapi.VerifyResponse{Message: authapi.ValidTokenMessage, UID: uid})
		return nil
	}
}
