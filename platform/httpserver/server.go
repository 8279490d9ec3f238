// Package httpserver runs a service's HTTP server from start to a graceful stop, and
// answers the health probes that orchestrators and the -healthcheck flag ask.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/platform/web"
)

// Options configure Run.
type Options struct {
	Port            int
	Handler         http.Handler
	Probes          *Probes
	ShutdownTimeout time.Duration
}

// Run serves until ctx is cancelled, then drains: readiness turns 503, in-flight requests
// get up to ShutdownTimeout to finish, and whatever is left after that is closed.
func Run(ctx context.Context, log *slog.Logger, opts Options) error {
	listener, err := net.Listen("tcp", ":"+strconv.Itoa(opts.Port))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", opts.Port, err)
	}
	srv := &http.Server{
		Handler:           opts.Handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(listener) }()
	log.Info("listening", "addr", listener.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	opts.Probes.startDraining()
	log.Info("shutting down: draining in-flight requests", "timeout", opts.ShutdownTimeout)
	// ctx is already cancelled: the drain needs a deadline of its own.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("drain did not finish within %s: %w", opts.ShutdownTimeout, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// Probes answers /healthz (the process is alive) and /readyz (it takes traffic now).
type Probes struct {
	draining atomic.Bool
}

func (p *Probes) startDraining() { p.draining.Store(true) }

// Healthz always answers 200 while the process can serve HTTP at all.
func (p *Probes) Healthz(w http.ResponseWriter, r *http.Request) {
	respondStatus(w, http.StatusOK, "ok")
}

// Readyz answers 200, or 503 once shutdown has begun so that no new traffic is sent here.
func (p *Probes) Readyz(w http.ResponseWriter, r *http.Request) {
	if p.draining.Load() {
		respondStatus(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	respondStatus(w, http.StatusOK, "ready")
}

func respondStatus(w http.ResponseWriter, status int, state string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"status\":%q,\"message\":%q}\n", state, state)
}

// Probe asks the server on this machine's port for /healthz, for images that have no curl.
func Probe(port int) error {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %s", resp.Status)
	}
	return nil
}

// Router returns a chi router with what every service has: a request id for each request,
// panics turned into JSON 500s, metrics, an access log line per request, JSON 404 and 405,
// and the operational routes GET /healthz, /readyz and /metrics. Services add their own routes.
// extra middlewares run after those, for every route.
func Router(log *slog.Logger, probes *Probes, m *metrics.Registry, extra ...func(http.Handler) http.Handler) chi.Router {
	r := chi.NewRouter()
	r.Use(requestid.Middleware, web.Recover(log), m.Middleware, web.AccessLog(log, "/healthz", "/readyz", "/metrics"))
	r.Use(extra...)
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)
	r.Get("/healthz", probes.Healthz)
	r.Get("/readyz", probes.Readyz)
	r.Method(http.MethodGet, "/metrics", m.Handler())
	return r
}
