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

// Deps are what users' routes work with: what every service's routes have (the log, the
// probes, the metrics), then users' own.
type Deps struct {
	Log     *slog.Logger
	Probes  *httpserver.Probes
	Metrics *metrics.Registry

	Accounts  Accounts
	Throttles Throttles
}

// Accounts signs users up and logs them in; *accounts.Accounts is one.
type Accounts interface {
	// SignUp errors: accounts.ErrExists, accounts.ErrUnavailable, accounts.ErrFull,
	// authapi.ErrUnavailable, or internal ones.
	SignUp(ctx context.Context, c accounts.Credentials) error
	// LogIn errors: accounts.ErrBadCredentials, accounts.ErrUnavailable,
	// authapi.ErrUnavailable, or internal ones.
	LogIn(ctx context.Context, c accounts.Credentials) (token string, err error)
}

var _ Accounts = (*accounts.Accounts)(nil)

// Throttles bound what one client may try, counted before anything reaches auth. A nil
// Limiter allows everything.
type Throttles struct {
	// Proxies are those whose X-Forwarded-For names the client (TRUSTED_PROXIES); nil: the
	// client is the TCP peer.
	Proxies *throttle.Proxies
	// LoginFailuresPerClient counts failed logins (wrong password, unknown email) by client
	// address: past it, the address's logins get 429, except to accounts it has logged in to
	// before (KnownLogins), so that a guesser behind the same address (a NAT, a proxy) does not
	// lock out the others who log in there. A successful login costs nothing, so the course's
	// flow never meets it.
	LoginFailuresPerClient *throttle.Limiter
	// LoginFailuresPerAccount counts failed logins at one account, from every address: each
	// login takes a try before it reaches auth and a successful one gives it back, so that
	// guesses from many addresses at once get exactly this many. Past it, the account is closed
	// to every address but those that have logged in to it before (KnownLogins): its owner
	// still logs in.
	LoginFailuresPerAccount *throttle.Limiter
	// KnownLogins are the address and account pairs that logged in successfully of late.
	KnownLogins *throttle.Seen
	// SignupsPerClient counts signups by client address: each costs a bcrypt hash in auth.
	SignupsPerClient *throttle.Limiter
	// InFlightPerClient bounds the logins and signups of one client address inside at once;
	// AtAuth bounds them from every client at once, in a line where the address that has gone
	// through least of late goes first (throttle.Fair), a login where its address logged in
	// before counted apart from the address's others (an attacker behind the same address does
	// not push it back). Each waits at most WaitForPlace.
	InFlightPerClient *throttle.Gate
	AtAuth            *throttle.Fair
	WaitForPlace      time.Duration
}

// enter takes one of the client's places for a bcrypt-costing request and then one of
// auth's in turn for line (the client, or a known login's own key), or answers 429 (the
// client has too many inside) or 503 (auth has no room for it in time).
func (t Throttles) enter(r *http.Request, client, line string) (leave func(), err error) {
	ctx, cancel := context.WithTimeout(r.Context(), t.WaitForPlace)
	defer cancel()
	leaveClient, err := t.InFlightPerClient.Enter(ctx, client)
	if err != nil {
		return nil, tooMany("logins and signups at once from this address", time.Second)
	}
	leaveAuth, err := t.AtAuth.Enter(ctx, line)
	if err != nil {
		leaveClient()
		return nil, web.Busy("The auth service is busy. Try again in a moment.", err)
	}
	return func() { leaveAuth(); leaveClient() }, nil
}

// Routes lists every route users serves, besides GET /healthz and /readyz.
func Routes(d Deps) http.Handler {
	r := httpserver.Router(d.Log, d.Probes, d.Metrics)
	outage := web.NewOutage(d.Log, "auth")
	r.Post("/signup", web.Handle(d.Log, handleSignup(d.Accounts, d.Throttles, outage)))
	r.Post("/login", web.Handle(d.Log, handleLogin(d.Accounts, d.Throttles, outage)))
	return r
}
