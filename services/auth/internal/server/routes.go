// Package server is auth's HTTP API: internal only, called by users and tasks, each call
// authenticated by the service credential they share (AUTH_API_KEY).
package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

// Deps are what auth's routes work with: what every service's routes have (the log, the
// probes, the metrics), then auth's own.
type Deps struct {
	Log     *slog.Logger
	Probes  *httpserver.Probes
	Metrics *metrics.Registry

	Hasher Hasher
	Issuer Issuer
	// APIKey is required of every caller of the internal routes; empty (DEV_MODE) trusts all.
	APIKey string
}

// Hasher hashes passwords and checks them against hashes; *password.Hasher is one.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Matches(ctx context.Context, hash, password string) (bool, error)
}

// Issuer signs tokens and verifies them; *token.Issuer is one.
type Issuer interface {
	Issue(uid string) (string, error)
	Verify(token string) (uid string, err error)
}

var (
	_ Hasher = (*password.Hasher)(nil)
	_ Issuer = (*token.Issuer)(nil)
)

// Routes lists every route auth serves, besides GET /healthz and /readyz.
func Routes(d Deps) http.Handler {
	r := httpserver.Router(d.Log, d.Probes, d.Metrics)
	r.Group(func(r chi.Router) {
		r.Use(requireAPIKey(d.Log, d.APIKey))
		r.Post(authapi.PathHashPassword, web.Handle(d.Log, handleHashPassword(d.Hasher)))
		r.Post(authapi.PathIssueToken, web.Handle(d.Log, handleIssueToken(d.Log, d.Hasher, d.Issuer)))
		r.Post(authapi.PathVerifyToken, web.Handle(d.Log, handleVerifyToken(d.Log, d.Issuer)))
	})
	return r
}
