// Package server is the users service's public HTTP API.
package server

import (
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
)

// Routes lists every route users serves, besides GET /healthz, /readyz and /metrics.
func Routes(log *slog.Logger, probes *httpserver.Probes, m *metrics.Registry, accts *accounts.Accounts) http.Handler {
	r := httpserver.Router(log, probes, m)
	r.Post("/signup", web.Handle(log, handleSignup(accts)))
	r.Post("/login", web.Handle(log, handleLogin(accts)))
	return r
}
