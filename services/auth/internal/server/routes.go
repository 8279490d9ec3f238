// Package server is auth's HTTP API: internal only, called by users and tasks.
package server

import (
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

// Routes lists every route auth serves, besides GET /healthz, /readyz and /metrics.
func Routes(log *slog.Logger, probes *httpserver.Probes, m *metrics.Registry, hasher *password.Hasher, issuer *token.Issuer) http.Handler {
	r := httpserver.Router(log, probes, m)
	r.Post(authapi.PathHashPassword, web.Handle(log, handleHashPassword(hasher)))
	r.Post(authapi.PathIssueToken, web.Handle(log, handleIssueToken(log, hasher, issuer)))
	r.Post(authapi.PathVerifyToken, web.Handle(log, handleVerifyToken(log, issuer)))
	return r
}
