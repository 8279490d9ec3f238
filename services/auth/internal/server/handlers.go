package server

import (
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

var (
	errPasswordMissing = web.NewError(http.StatusUnprocessableEntity, "A password needs to be specified!")
	errPasswordTooLong = web.NewError(http.StatusUnprocessableEntity, "A password can have at most 72 bytes.")
	errUIDMissing      = web.NewError(http.StatusUnprocessableEntity, "A user id (uid) needs to be specified!")
	errBadCredentials  = web.NewError(http.StatusUnauthorized, "Invalid credentials.")
	errCouldNotVerify  = web.NewError(http.StatusUnauthorized, "Could not verify token.")
)

func handleHashPassword(hasher *password.Hasher) web.HandlerFunc {
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
		hash, err := hasher.Hash(req.Password)
		if err != nil {
			return err
		}
		web.Respond(w, http.StatusOK, authapi.HashResponse{HashedPassword: hash})
		return nil
	}
}

func handleIssueToken(log *slog.Logger, hasher *password.Hasher, issuer *token.Issuer) web.HandlerFunc {
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
		if !hasher.Matches(req.HashedPassword, req.Password) {
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

func handleVerifyToken(log *slog.Logger, issuer *token.Issuer) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := web.Decode[authapi.VerifyRequest](w, r)
		if err != nil {
			return err
		}
		uid, err := issuer.Verify(req.Token)
		if err != nil {
			// The reason (expired, bad signature…) helps an operator; the token itself is never logged.
			log.InfoContext(r.Context(), "token refused", "reason", err.Error())
			return errCouldNotVerify
		}
		web.Respond(w, http.StatusOK, authapi.VerifyResponse{Message: "Valid token.", UID: uid})
		return nil
	}
}
