// Package server is the frontend's HTTP routes: the page, /api/ forwarded to users and tasks,
// and the network page with the chain's discovery views.
package server

import (
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/frontend/internal/chainview"
	"github.com/kub-demo/kub-demo/services/frontend/internal/ui"
)

// Routes lists every route the frontend serves, besides GET /healthz, /readyz and /metrics.
// The /api/ routes take any method: users and tasks answer the ones they do not serve (and
// tasks the CORS preflight), as they would without the frontend in between.
func Routes(log *slog.Logger, probes *httpserver.Probes, m *metrics.Registry, page *ui.Page, users, tasks http.Handler, network *chainview.Chain) http.Handler {
	r := httpserver.Router(log, probes, m)
	r.Get("/", page.File("index.html"))
	r.Get("/app.js", page.File("app.js"))
	r.Get("/app.css", page.File("app.css"))
	r.Get("/config.js", page.ConfigJS)
	r.Get("/network.html", page.File("network.html"))
	r.Get("/network.js", page.File("network.js"))
	r.Get("/network/discovery", network.Handler().ServeHTTP)
	r.Handle("/api/signup", users)
	r.Handle("/api/login", users)
	r.Handle("/api/tasks", tasks)
	return r
}
