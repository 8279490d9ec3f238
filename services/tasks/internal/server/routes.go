// Package server is the tasks service's public HTTP API.
package server

import (
	"log/slog"
	"net/http"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/web"
)

// Routes lists every route tasks serves, besides GET /healthz, /readyz and /metrics. Every
// answer carries the CORS headers of the original, and any OPTIONS preflight is answered.
func Routes(log *slog.Logger, probes *httpserver.Probes, m *metrics.Registry, tasks Tasks, auth Verifier) http.Handler {
	r := httpserver.Router(log, probes, m, cors)
	r.Get("/tasks", web.Handle(log, handleTaskList(tasks, auth)))
	r.Post("/tasks", web.Handle(log, handleTaskCreate(tasks, auth)))
	return r
}

func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "POST,GET,OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type,Authorization")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
