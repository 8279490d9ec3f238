// Package httpserver runs a service's HTTP server from start to a graceful stop, and
// answers the health probes that orchestrators and the -healthcheck flag ask.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/platform/web"
)

// Limits that hold for every service: a client can make the server hold at most this much
// per connection, and MaxConnections connections (Options).
const (
	// MaxHeaderBytes bounds a request's line and headers (a JWT is well under 1 KiB). Go adds
	// 4 KiB of slack; past that the client gets 431.
	MaxHeaderBytes = 32 << 10
	// IdleTimeout is how long a kept-alive connection may wait for its next request.
	IdleTimeout = 30 * time.Second
	// metricsConnections caps the metrics port: a scraper or two, and a curl.
	metricsConnections = 16
)

// Options configure Run.
type Options struct {
	Port    int
	Handler http.Handler
	// MetricsPort serves Metrics (GET /metrics) apart from the public port, so that a public
	// Service or load balancer never exposes them.
	MetricsPort int
	Metrics     http.Handler
	// Admin holds more pages of the metrics port, by path.
	Admin  map[string]http.Handler
	Probes *Probes
	// MaxConnections caps the connections held open on Port, and MaxConnectionsPerClient
	// those of one client address (0: MaxConnections); see connLimiter.
	MaxConnections          int
	MaxConnectionsPerClient int
	// ShutdownDelay is how long the server goes on serving after SIGTERM, with /readyz at 503
	// and keep-alives off, so that load balancers and kube-proxy stop sending traffic here
	// before the listener closes. ShutdownTimeout then bounds the drain of requests in flight.
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
}

// Run serves until ctx is cancelled, then drains: readiness turns 503 and connections stop
// being kept alive for ShutdownDelay, in-flight requests get up to ShutdownTimeout to finish,
// and whatever is left after that is closed.
func Run(ctx context.Context, log *slog.Logger, opts Options) error {
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	metricsListener, err := net.Listen("tcp", ":"+strconv.Itoa(opts.MetricsPort))
	if err != nil {
		return fmt.Errorf("listen on METRICS_PORT %d: %w", opts.MetricsPort, err)
	}
	listener, err := net.Listen("tcp", ":"+strconv.Itoa(opts.Port))
	if err != nil {
		metricsListener.Close()
		return fmt.Errorf("listen on port %d: %w", opts.Port, err)
	}
	public, publicLimit := newServer(closeWhenDraining(opts.Probes, opts.Handler), listener, max(opts.MaxConnections, 1), opts.MaxConnectionsPerClient, errorLog)
	metricsSrv, metricsLimit := newServer(metricsHandler(opts.Metrics, opts.Admin), metricsListener, metricsConnections, 0, errorLog)

	serveErr := make(chan error, 2)
	go func() { serveErr <- metricsSrv.Serve(metricsLimit) }()
	go func() { serveErr <- public.Serve(publicLimit) }()
	log.Info("metrics listening", "addr", metricsListener.Addr().String())
	log.Info("listening", "addr", listener.Addr().String(), "maxConnections", opts.MaxConnections, "maxConnectionsPerClient", publicLimit.perClient)

	select {
	case err := <-serveErr:
		public.Close()
		metricsSrv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// From now on every answer carries "Connection: close" (closeWhenDraining), so that each
	// client's next request opens a connection that the load balancer sends elsewhere. Idle
	// connections are left open until Shutdown: closing them now would fail a request that a
	// client sends on one at this instant, which few clients retry when it is a POST.
	opts.Probes.startDraining()
	if opts.ShutdownDelay > 0 {
		log.Info("shutting down: still serving while load balancers stop sending traffic", "delay", opts.ShutdownDelay)
		select {
		case <-time.After(opts.ShutdownDelay):
		case err := <-serveErr:
			public.Close()
			metricsSrv.Close()
			return fmt.Errorf("serve: %w", err)
		}
	}
	log.Info("shutting down: draining in-flight requests", "timeout", opts.ShutdownTimeout)
	// ctx is already cancelled: the drain needs a deadline of its own.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	metricsSrv.Close()
	// Uploads that stalled are cut as the drain goes: their requests would otherwise hold it
	// until ShutdownTimeout, and end it in an error.
	sweep := time.NewTicker(100 * time.Millisecond)
	defer sweep.Stop()
	go func() {
		for range sweep.C {
			publicLimit.closeLate(time.Now())
		}
	}()
	if err := public.Shutdown(shutdownCtx); err != nil {
		public.Close()
		return fmt.Errorf("drain did not finish within %s: %w", opts.ShutdownTimeout, err)
	}
	for range 2 {
		if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	log.Info("stopped")
	return nil
}

// closeWhenDraining asks every client to close its connection after the answer once the
// server is draining.
func closeWhenDraining(probes *Probes, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if probes.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// newServer returns a server for handler with every timeout and limit set, and l wrapped to
// cap its connections at maxConns, perClient of them from one address.
func newServer(handler http.Handler, l net.Listener, maxConns, perClient int, errorLog *log.Logger) (*http.Server, *connLimiter) {
	limited := newConnLimiter(l, maxConns, perClient)
	return &http.Server{
		Handler:           trackBodies(handler),
		ConnContext:       withConn,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnState:         limited.connState,
		ErrorLog:          errorLog,
	}, limited
}

// debugRoutes, set in -tags benchpprof builds only, adds net/http/pprof to the metrics port.
var debugRoutes func(*http.ServeMux)

// metricsHandler serves GET /metrics, the admin pages, and a JSON 404 for anything else.
func metricsHandler(metrics http.Handler, admin map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	for path, page := range admin {
		mux.Handle(path, page)
	}
	if debugRoutes != nil {
		debugRoutes(mux)
	}
	mux.HandleFunc("/", web.NotFound)
	return mux
}

// Probes answers /healthz (the process is alive) and /readyz (it can serve the course's
// flow now: every check passes, and it is not shutting down).
type Probes struct {
	draining atomic.Bool
	mu       sync.Mutex
	checks   []readinessCheck
	log      *slog.Logger
	// The last answer of the checks and when it was found: /readyz is on the public port,
	// and a flood of it must not become a flood of database pings or file looks.
	checkedAt   time.Time
	lastFailing string
}

type readinessCheck struct {
	name   string
	check  func(context.Context) error
	failed bool // the last answer, to log changes only
}

// NewProbes returns probes that log when a readiness check changes its answer.
func NewProbes(log *slog.Logger) *Probes { return &Probes{log: log} }

// AddCheck makes /readyz answer 503 while check fails. name says, in the answer, what is not
// ready (the error itself is logged, not shown: /readyz is on the public port). Each check
// gets readinessTimeout.
func (p *Probes) AddCheck(name string, check func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks = append(p.checks, readinessCheck{name: name, check: check})
}

const readinessTimeout = time.Second

// recheckAfter is how long a passing answer of the checks serves /readyz before they run
// again. A failing answer is not kept: the next request runs the checks again, so readiness
// turns 200 as soon as they pass (a service starting up is ready at once, not up to
// recheckAfter later). Either way, requests that wait while the checks run get that run's
// answer, so a flood of /readyz runs them one at a time.
const recheckAfter = 250 * time.Millisecond

func (p *Probes) startDraining() { p.draining.Store(true) }

// Healthz always answers 200 while the process can serve HTTP at all.
func (p *Probes) Healthz(w http.ResponseWriter, r *http.Request) {
	respondStatus(w, http.StatusOK, "ok", "ok")
}

// Readyz answers 200 when every check passes, or 503 naming the first that fails, and 503
// once shutdown has begun so that no new traffic is sent here.
func (p *Probes) Readyz(w http.ResponseWriter, r *http.Request) {
	if p.draining.Load() {
		respondStatus(w, http.StatusServiceUnavailable, "shutting down", "shutting down")
		return
	}
	if name := p.failing(r.Context()); name != "" {
		respondStatus(w, http.StatusServiceUnavailable, "not ready", "not ready: "+name)
		return
	}
	respondStatus(w, http.StatusOK, "ready", "ready")
}

// failing returns the name of the first check that fails, or "": from the last run of the
// checks if it ended after this request came or passed less than recheckAfter ago, or else
// from running them now.
func (p *Probes) failing(ctx context.Context) string {
	asked := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.checkedAt.After(asked) || (p.lastFailing == "" && time.Since(p.checkedAt) < recheckAfter) {
		return p.lastFailing
	}
	p.lastFailing = p.runChecks(ctx)
	p.checkedAt = time.Now()
	return p.lastFailing
}

// runChecks runs the checks in order and returns the name of the first that fails, or "".
// Callers hold p.mu.
func (p *Probes) runChecks(ctx context.Context) string {
	for i := range p.checks {
		c := &p.checks[i]
		checkCtx, cancel := context.WithTimeout(ctx, readinessTimeout)
		err := c.check(checkCtx)
		cancel()
		if (err != nil) != c.failed && p.log != nil {
			if err != nil {
				p.log.Warn("not ready", "check", c.name, "error", err.Error())
			} else {
				p.log.Info("ready again", "check", c.name)
			}
		}
		c.failed = err != nil
		if err != nil {
			return c.name
		}
	}
	return ""
}

// probeAnswer is what /healthz and /readyz answer.
type probeAnswer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func respondStatus(w http.ResponseWriter, status int, state, message string) {
	w.Header().Set("Cache-Control", "no-store")
	web.Respond(w, status, probeAnswer{state, message})
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

// Router returns a chi router with what every service has, outermost first: a request id for
// each request, metrics, an access log line per request, the original Express services'
// routing (paths match whatever their case and with or without a trailing slash; HEAD is
// answered by a GET route), extra (for every route), and, innermost, panics turned into JSON
// 500s that metrics and the access log count like any other answer. It answers JSON 404 and
// 405, and the probes GET /healthz and /readyz. Services add their own routes. Metrics are not
// here: they are served on their own port (Options.MetricsPort).
func Router(log *slog.Logger, probes *Probes, m *metrics.Registry, extra ...func(http.Handler) http.Handler) chi.Router {
	r := chi.NewRouter()
	r.Use(requestid.Middleware, m.Middleware, web.AccessLog(log, "/healthz", "/readyz"), expressPaths, middleware.GetHead)
	r.Use(extra...)
	r.Use(web.Recover(log))
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)
	r.Get("/healthz", probes.Healthz)
	r.Get("/readyz", probes.Readyz)
	return r
}

// expressPaths routes a request as Express did by default: /Tasks, /TASKS and /tasks/ all
// find /tasks. Every route here is lower case; the request's own path is left as it came.
func expressPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rctx := chi.RouteContext(r.Context()); rctx != nil {
			path := strings.ToLower(r.URL.Path)
			if len(path) > 1 {
				path = strings.TrimSuffix(path, "/")
			}
			rctx.RoutePath = path
		}
		next.ServeHTTP(w, r)
	})
}

// errNotYet is what a ReadyWhen check answers until it passes.
var errNotYet = errors.New("not yet")

// ReadyWhen is a readiness check that passes when ready reports true.
func ReadyWhen(ready func() bool) func(context.Context) error {
	return func(context.Context) error {
		if !ready() {
			return errNotYet
		}
		return nil
	}
}
