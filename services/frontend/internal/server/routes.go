// Package server is the frontend's HTTP routes: the page, /api/ forwarded to users and tasks,
// and the network page with the chain's discovery views.
package server

import (
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/frontend/internal/ui"
)

// Deps are what the frontend's routes work with: what every service's routes have (the log,
// the probes, the metrics), then the frontend's own.
type Deps struct {
	Log     *slog.Logger
	Probes  *httpserver.Probes
	Metrics *metrics.Registry

	Page Page
	// Users and Tasks forward a request to that service (package proxy).
	Users, Tasks http.Handler
	// Network gathers the chain's discovery views for the network page (package chainview).
	Network http.Handler
}

// Page serves the web UI's files and its settings; *ui.Page is one.
type Page interface {
	File(name string) http.HandlerFunc
	ConfigJS(w http.ResponseWriter, r *http.Request)
}

var _ Page = (*ui.Page)(nil)

// Routes lists every route the frontend serves, besides GET /healthz, /readyz and /metrics.
// The /api/ routes take any method: users and tasks answer the ones they do not serve (and
// tasks the CORS preflight), as they would without the frontend in between.
func Routes(d Deps) http.Handler {
	r := httpserver.Router(d.Log, d.Probes, d.Metrics)
	r.Get("/", d.Page.File("index.html"))
	r.Get("/app.js", d.Page.File("app.js"))
	r.Get("/app.css", d.Page.File("app.css"))
	r.Get("/config.js", d.Page.ConfigJS)
	r.Get("/network.html", d.Page.File("network.html"))
	r.Get("/network.js", d.Page.File("network.js"))
	r.Get("/network/discovery", d.Network.ServeHTTP)
	r.Handle("/api/signup", d.Users)
	r.Handle("/api/login", d.Users)
	r.Handle("/api/tasks", d.Tasks)
	return r
}
