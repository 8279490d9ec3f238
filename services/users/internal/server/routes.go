// Package server is the users service's public HTTP API.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/throttle"
)

// Throttles bound what one client may try, counted before anything reaches auth. A nil
// Limiter allows everything.
type Throttles struct {
	// LoginFailuresPerClient and LoginFailuresPerAccount count failed logins (wrong password,
	// unknown email) by client address and by account: a successful login costs nothing, so
	// the course's flow never meets them, and a password guesser soon gets 429.
	LoginFailuresPerClient  *throttle.Limiter
	LoginFailuresPerAccount *throttle.Limiter
	// FailedOnAccount remembers which addresses failed on which account (one failure per
	// window): an account past its limit is closed only to those, so that nobody can lock an
	// account's owner out by failing on purpose. Nil closes it to every address.
	FailedOnAccount *throttle.Limiter
	// SignupsPerClient counts signups by client address: each costs a bcrypt hash in auth.
	SignupsPerClient *throttle.Limiter
	// InFlightPerClient bounds the logins and signups of one client address inside at once
	// (each is a bcrypt run in auth): more wait their turn here, for at most WaitForPlace.
	InFlightPerClient *throttle.Gate
	WaitForPlace      time.Duration
}

// enter takes one of the client's places for a bcrypt-costing request, or answers 429.
func (t Throttles) enter(r *http.Request, client string) (leave func(), err error) {
	ctx, cancel := context.WithTimeout(r.Context(), t.WaitForPlace)
	defer cancel()
	leave, err = t.InFlightPerClient.Enter(ctx, client)
	if err != nil {
		return nil, tooMany("logins and signups at once from this address", time.Second)
	}
	return leave, nil
}

// Routes lists every route users serves, besides GET /healthz and /readyz.
func Routes(log *slog.Logger, probes *httpserver.Probes, m *metrics.Registry, accts *accounts.Accounts, limits Throttles) http.Handler {
	r := httpserver.Router(log, probes, m)
	r.Post("/signup", web.Handle(log, handleSignup(accts, limits)))
	r.Post("/login", web.Handle(log, handleLogin(accts, limits)))
	return r
}
