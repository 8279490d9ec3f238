// Package server is auth's HTTP API: internal only, called by users and tasks.
package server

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

// Routes lists every route auth serves.
func Routes(log *slog.Logger, probes *httpserver.Probes, hasher *password.Hasher, issuer *token.Issuer) http.Handler {
	r := chi.NewRouter()
	r.Use(web.Recover(log), web.AccessLog(log))
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)

	r.Get("/healthz", probes.Healthz)
	r.Get("/readyz", probes.Readyz)

	r.Post(authapi.PathHashPassword, web.Handle(log, handleHashPassword(hasher)))
	r.Post(authapi.PathIssueToken, web.Handle(log, handleIssueToken(log, hasher, issuer)))
	r.Post(authapi.PathVerifyToken, web.Handle(log, handleVerifyToken(log, issuer)))
	return r
}
