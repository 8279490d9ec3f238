// Package server is the users service's public HTTP API.
package server

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
)

// Routes lists every route users serves.
func Routes(log *slog.Logger, probes *httpserver.Probes, accts *accounts.Accounts) http.Handler {
	r := chi.NewRouter()
	r.Use(web.Recover(log), web.AccessLog(log))
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)

	r.Get("/healthz", probes.Healthz)
	r.Get("/readyz", probes.Readyz)

	r.Post("/signup", web.Handle(log, handleSignup(accts)))
	r.Post("/login", web.Handle(log, handleLogin(accts)))
	return r
}
