// Package server is the tasks service's public HTTP API.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

// Deps are what tasks' routes work with: what every service's routes have (the log, the
// probes, the metrics), then tasks' own.
type Deps struct {
	Log     *slog.Logger
	Probes  *httpserver.Probes
	Metrics *metrics.Registry

	Tasks tasks.Store
	Auth  Verifier
}

// Routes lists every route tasks serves, besides GET /healthz, /readyz and /metrics. Every
// answer carries the CORS headers of the original, and any OPTIONS preflight is answered.
func Routes(d Deps) http.Handler {
	r := httpserver.Router(d.Log, d.Probes, d.Metrics, cors)
	auth := watchedVerifier{d.Auth, web.NewOutage(d.Log, "auth")}
	r.Get("/tasks", web.Handle(d.Log, handleTaskList(d.Tasks, auth)))
	r.Post("/tasks", web.Handle(d.Log, handleTaskCreate(d.Tasks, auth)))
	return r
}

// watchedVerifier logs an auth outage once it begins, while it lasts and when it ends
// (web.Outage): authenticate answers each request it fails without logging it.
type watchedVerifier struct {
	Verifier
	outage *web.Outage
}

func (v watchedVerifier) VerifyToken(ctx context.Context, token string) (string, error) {
	uid, err := v.Verifier.VerifyToken(ctx, token)
	switch {
	case errors.Is(err, authapi.ErrBusy): // load being shed, not an outage
	case errors.Is(err, authapi.ErrUnavailable):
		v.outage.Failed(err)
	case err == nil, errors.Is(err, authapi.ErrRejected):
		v.outage.Succeeded()
	}
	return uid, err
}

// The CORS headers' values, shared by every answer (net/http never changes a header value in
// place), so that setting them allocates nothing.
var (
	corsOrigin  = []string{"*"}
	corsMethods = []string{"POST,GET,OPTIONS"}
	corsHeaders = []string{"Content-Type,Authorization"}
	// What a page may read of an answer besides the usual headers: which pods served it
	// (package trail) and the request id.
	corsExposed = []string{"X-Served-By,X-Auth-Verified-By,X-Request-ID"}
)

func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Access-Control-Allow-Origin"] = corsOrigin
		h["Access-Control-Allow-Methods"] = corsMethods
		h["Access-Control-Allow-Headers"] = corsHeaders
		h["Access-Control-Expose-Headers"] = corsExposed
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
