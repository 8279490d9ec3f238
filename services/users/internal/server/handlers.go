package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
)

// Messages that clients of the original service match on: keep them as they are.
var (
	errCredentialsMissing = web.NewError(http.StatusUnprocessableEntity, "An email and password needs to be specified!")
	errPasswordTooLong    = web.NewError(http.StatusUnprocessableEntity, "A password can have at most 72 bytes.")
	errEmailTooLong       = web.NewError(http.StatusUnprocessableEntity, "An email can have at most 254 characters.")
	errEmailControl       = web.NewError(http.StatusUnprocessableEntity, "An email cannot hold control characters.")
	errExists             = web.NewError(http.StatusConflict, "A user with this email exists already.")
	errBadCredentials     = web.NewError(http.StatusUnauthorized, "Invalid email or password.")
	errStoreFull          = web.NewError(http.StatusInsufficientStorage, "No more users can be stored here: the user store is at its size limit.")
)

// tooMany is the 429 for a client or account that must wait before its next try.
func tooMany(what string, wait time.Duration) *web.Error {
	seconds := int(math.Ceil(wait.Seconds()))
	return &web.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
		Message: fmt.Sprintf("Too many %s. Try again in %d seconds.", what, seconds)}
}

type credentialsRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// decodeCredentials reads and validates a signup or login body.
func decodeCredentials(w http.ResponseWriter, r *http.Request) (accounts.Credentials, error) {
	req, err := web.Decode[credentialsRequest](w, r)
	if err != nil {
		return accounts.Credentials{}, err
	}
	if strings.TrimSpace(req.Email) == "" || strings.TrimSpace(req.Password) == "" {
		return accounts.Credentials{}, errCredentialsMissing
	}
	if len(req.Password) > authapi.MaxPasswordBytes {
		return accounts.Credentials{}, errPasswordTooLong
	}
	if len(strings.TrimSpace(req.Email)) > 254 {
		return accounts.Credentials{}, errEmailTooLong
	}
	if strings.IndexFunc(req.Email, unicode.IsControl) >= 0 {
		return accounts.Credentials{}, errEmailControl
	}
	return accounts.Credentials{Email: req.Email, Password: req.Password}, nil
}

// keyRefusedMessage answers while auth refuses this service's AUTH_API_KEY: no retry mends
// that, so the client is told who can.
const keyRefusedMessage = "The users service is misconfigured: the auth service refuses its AUTH_API_KEY, " +
	"which must be the same in auth, users and tasks. Retrying will not help; an operator must fix the setting."

// unavailable maps an auth outage, or a user store that cannot be used now (its file, or its
// database), to 503; anything else is returned as it is. None is logged per request: a busy
// auth (shedding load) is the load itself, an outage of auth is logged when it begins, while
// it lasts and when it ends (outage), and an unusable store logged why, once. Under a flood
// a line per request would be a flood of error lines.
func unavailable(err error, outage *web.Outage) error {
	switch {
	case errors.Is(err, authapi.ErrBusy):
		return web.Busy("The auth service is busy. Try again in a moment.", err)
	case errors.Is(err, authapi.ErrKeyRefused):
		return web.Unavailable(keyRefusedMessage, err)
	case errors.Is(err, authapi.ErrUnavailable):
		outage.Failed(err)
		return web.Busy("The auth service is unavailable. Try again in a moment.", err)
	case errors.Is(err, accounts.ErrUnavailable):
		return web.Busy("The user store is unavailable. Try again in a moment.", err)
	}
	return err
}

func handleSignup(accts Accounts, limits Throttles, outage *web.Outage) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		creds, err := decodeCredentials(w, r)
		if err != nil {
			return err
		}
		now, client := time.Now(), limits.Proxies.ClientKey(r)
		if wait := limits.SignupsPerClient.Wait(client, now); wait > 0 {
			return tooMany("signups from this address", wait)
		}
		limits.SignupsPerClient.Spend(client, now)
		leave, err := limits.enter(r, client, client)
		if err != nil {
			return err
		}
		defer leave()
		switch err := accts.SignUp(r.Context(), creds); {
		case errors.Is(err, accounts.ErrExists):
			return errExists
		case errors.Is(err, accounts.ErrFull):
			return errStoreFull
		case err != nil:
			return unavailable(err, outage)
		}
		outage.Succeeded()
		web.Respond(w, http.StatusCreated, web.MessageBody{Message: "User created!"})
		return nil
	}
}

// What a login costs its key in the line for auth, once auth has answered, over the turn
// it took: a failed one more (failures are what a guesser's turns are, so that even one that
// moves to a new address every few tries soon goes behind the others), a successful one
// less (someone who logs in often is not pushed behind those who fail).
const (
	failedLoginTurns = 4
	goodLoginTurns   = -0.75
)

type tokenResponse struct {
	Token string `json:"token"`
}

func handleLogin(accts Accounts, limits Throttles, outage *web.Outage) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		creds, err := decodeCredentials(w, r)
		if err != nil {
			return err
		}
		client, account := limits.Proxies.ClientKey(r), accounts.NormalizeEmail(creds.Email)
		pair := client + " " + account
		known := limits.KnownLogins.Has(pair, time.Now())
		// An address past its failures may still log in where it has before; an account past
		// its failures, only from there.
		if wait := limits.LoginFailuresPerClient.Wait(client, time.Now()); wait > 0 && !known {
			return tooMany("failed logins", wait)
		}
		accountTry := func(failed bool) {}
		if !known {
			var wait time.Duration
			if accountTry, wait = limits.LoginFailuresPerAccount.Take(account, time.Now()); wait > 0 {
				return tooMany("failed logins", wait)
			}
		}
		line := client
		if known {
			line = pair
		}
		leave, err := limits.enter(r, client, line)
		if err != nil {
			accountTry(false)
			return err
		}
		defer leave()
		token, err := accts.LogIn(r.Context(), creds)
		accountTry(errors.Is(err, accounts.ErrBadCredentials))
		switch {
		case errors.Is(err, accounts.ErrBadCredentials):
			outage.Succeeded()
			limits.LoginFailuresPerClient.Spend(client, time.Now())
			limits.AtAuth.Charge(line, failedLoginTurns)
			return errBadCredentials
		case err != nil:
			return unavailable(err, outage)
		}
		outage.Succeeded()
		limits.AtAuth.Charge(line, goodLoginTurns)
		limits.KnownLogins.Mark(pair, time.Now())
		web.Respond(w, http.StatusOK, tokenResponse{Token: token})
		return nil
	}
}
