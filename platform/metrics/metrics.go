// Package metrics is what every service exposes at GET /metrics in the Prometheus text
// format: requests by route, method and status with latency histograms, calls to auth, and
// writes to a record file. Each service has its own registry, so tests can run several.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kub-demo/kub-demo/authapi"
)

// Registry holds one service's metrics.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns a registry with the process and Go runtime metrics and the HTTP ones.
func New() *Registry {
	m := &Registry{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency)
	return m
}

// Handler serves the metrics.
func (m *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Middleware counts and times every request by its chi route pattern (not its path, so ids
// in paths or scanners' random URLs cannot blow up the number of series) and its method,
// where any method but the standard ones counts as OTHER: every label has a fixed, small set
// of values, whatever clients send.
func (m *Registry) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
			route = rctx.RoutePattern()
		}
		method := MethodLabel(r.Method)
		m.requests.WithLabelValues(route, method, strconv.Itoa(ww.Status())).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// MethodLabel is method when it is one of the standard HTTP methods, else "OTHER".
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// AuthCalls returns an observer for the auth client (authapi.Observer): calls to auth by
// route and outcome (ok, cached, rejected, unavailable, error), and the latency of those
// that went to auth (a cached verification did not).
func (m *Registry) AuthCalls() func(call string, took time.Duration, outcome string) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_client_requests_total",
		Help: "Calls to the auth service, by route and outcome (ok, cached: answered from the verified-token cache, rejected, unavailable, error).",
	}, []string{"call", "outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "auth_client_request_duration_seconds",
		Help:    "Time a call to the auth service took, by route (cached verifications not counted).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"call"})
	m.reg.MustRegister(calls, latency)
	return func(call string, took time.Duration, outcome string) {
		calls.WithLabelValues(call, outcome).Inc()
		if outcome != authapi.OutcomeCached {
			latency.WithLabelValues(call).Observe(took.Seconds())
		}
	}
}

// Store holds the metrics of one record file (tasks.txt, users.jsonl).
type Store struct {
	write, sync prometheus.Histogram
	batch       prometheus.Histogram
	failures    prometheus.Counter
}

// GaugeFunc registers a gauge whose value value reports when scraped.
func (m *Registry) GaugeFunc(name, help string, value func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value))
}

// Store registers the metrics of a record file, named <name>_store_….
func (m *Registry) Store(name string) *Store {
	durations := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	s := &Store{
		write: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: name + "_store_write_seconds", Help: "Time to write one batch of records (before fsync).", Buckets: durations,
		}),
		sync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: name + "_store_fsync_seconds", Help: "Time to fsync one batch of records.", Buckets: durations,
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: name + "_store_batch_records", Help: "Records written together under one fsync (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name + "_store_write_failures_total", Help: "Batches that could not be written or synced (disk full, read-only…).",
		}),
	}
	m.reg.MustRegister(s.write, s.sync, s.batch, s.failures)
	return s
}

// ObserveCommit records one batch; it fits recordlog.Options.OnCommit.
func (s *Store) ObserveCommit(records int, write, sync time.Duration, err error) {
	if err != nil {
		s.failures.Inc()
		return
	}
	s.batch.Observe(float64(records))
	s.write.Observe(write.Seconds())
	s.sync.Observe(sync.Seconds())
}
