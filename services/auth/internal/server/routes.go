// Package server is auth's HTTP API: internal only, called by users and tasks, each call
// authenticated by the service credential they share (AUTH_API_KEY).
package server

import (
	"github.com/go-chi/chi/v5"

	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

// Deps are what auth's routes work with.
type Deps struct {
	Hasher *password.Hasher
	Issuer *token.Issuer
	// APIKey is required of every caller of the internal routes; empty (DEV_MODE) trusts all.
	APIKey string
}

// Routes lists every route auth serves, besides GET /healthz and /readyz.
func Routes(log *slog.Logger, probes *httpserver.Probes, m *metrics.Registry, d Deps) http.Handler {
	r := httpserver.Router(log, probes, m)
	r.Group(func(r chi.Router) {
		r.Use(requireAPIKey(log, d.APIKey))
		r.Post(authapi.PathHashPassword, web.Handle(log, handleHashPassword(d.Hasher)))
		r.Post(authapi.PathIssueToken, web.Handle(log, handleIssueToken(log, d.Hasher, d.Issuer)))
		r.Post(authapi.PathVerifyToken, web.Handle(log, handleVerifyToken(log, d.Issuer)))
	})
	return r
}
