// Package service is what every kub-demo main does before it wires itself: read the
// environment into its config, answer the -env and -healthcheck flags, and build the logger.
// Main reads the process (Setup: the flags and the environment into the config; os.Environ
// for the discovery view) once, and hands what it read to the service's run, which tests call
// with their own.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/lab"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/platform/trail"
)

// Common settings, embedded in every service's config.
type Common struct {
	LogLevel                slog.Level    `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
	MetricsPort             int           `envconfig:"METRICS_PORT" default:"9090" desc:"port of GET /metrics (Prometheus), apart from the public port"`
	MaxConnections          int           `envconfig:"MAX_CONNECTIONS" default:"256" desc:"connections held open at once; past it the longest-idle is closed, or a new one gets 503"`
	MaxConnectionsPerClient int           `envconfig:"MAX_CONNECTIONS_PER_CLIENT" default:"0" desc:"connections held open at once from one client address (past it its own longest-idle is closed, or the new one gets 503); 0: no cap of its own (behind a proxy every client is one address)"`
	ShutdownDelay           time.Duration `envconfig:"SHUTDOWN_DELAY" default:"5s" desc:"after SIGTERM, how long to go on serving with /readyz at 503 before draining"`
	ShutdownTimeout         time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"10s" desc:"how long in-flight requests may take to finish after SIGTERM"`
	ServedBy                bool          `envconfig:"SERVED_BY" default:"true" desc:"name the pod that served each answer (X-Served-By: service, pod, IP, node, version) and, in tasks, the auth pod that verified the token (X-Auth-Verified-By); false: no such headers"`
	NodeName                string        `envconfig:"NODE_NAME" desc:"the node this pod runs on, for X-Served-By (deploy/k8s sets it from spec.nodeName)"`
	PodName                 string        `envconfig:"POD_NAME" desc:"this process's name in X-Served-By; empty: the host name, which Kubernetes sets to the pod's name (set it to tell apart processes of one host)"`
	LabControls             bool          `envconfig:"LAB_CONTROLS" default:"false" desc:"true: POST /lab on the metrics port makes this process slow, failing or unready, for teaching (the lessons and compose set it; never in production)"`

	name     string   // the service's, as Prepare was given it
	settings []string // the variables it reads
	environ  []string // the process's environment, for the discovery view
}

// validate checks the common settings.
func (c Common) validate() error {
	switch {
	case c.MetricsPort < 0 || c.MetricsPort > 65535:
		return fmt.Errorf("METRICS_PORT=%d is not a port", c.MetricsPort)
	case c.MaxConnectionsPerClient < 0:
		return fmt.Errorf("MAX_CONNECTIONS_PER_CLIENT=%d must not be negative", c.MaxConnectionsPerClient)
	case c.MaxConnections < 1:
		return fmt.Errorf("MAX_CONNECTIONS=%d must be at least 1", c.MaxConnections)
	case c.ShutdownDelay < 0:
		return fmt.Errorf("SHUTDOWN_DELAY=%s must not be negative", c.ShutdownDelay)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("SHUTDOWN_TIMEOUT=%s must be positive", c.ShutdownTimeout)
	}
	return nil
}

// Serve runs handler on port, and the metrics of m and the discovery view of peers
// (GET /discovery) on METRICS_PORT, until ctx ends, then drains (see httpserver.Run). With
// SERVED_BY, every answer names this pod (package trail).
func (c Common) Serve(ctx context.Context, log *slog.Logger, port int, handler http.Handler, m *metrics.Registry, probes *httpserver.Probes, peers ...discovery.Peer) error {
	var discoveryView http.Handler = discovery.Handler(c.name, peers, c.DiscoveryInputs)
	pod := c.Pod()
	if c.ServedBy {
		// The view names its pod too: a view fetched through a Service came from one of its pods.
		discoveryView = trail.Middleware(pod)(discoveryView)
	}
	admin := map[string]http.Handler{"/discovery": discoveryView}
	if c.LabControls {
		controls := lab.New(c.name, log)
		handler = controls.Middleware(handler)
		admin["/lab"] = controls.Handler()
		probes.AddCheck("lab control: told to be unready", controls.Ready)
		log.Warn("LAB_CONTROLS is on: POST /lab on the metrics port can make this process slow, failing or unready")
	}
	if c.ServedBy {
		handler = trail.Middleware(pod)(handler)
	}
	go func() { // what a learner got wrong in finding the peers, said once at start
		for _, w := range discovery.Look(ctx, c.name, peers, c.DiscoveryInputs()).Warnings {
			log.Warn("discovery: " + w)
		}
	}()
	return httpserver.Run(ctx, log, httpserver.Options{
		Port:                    port,
		Handler:                 handler,
		MetricsPort:             c.MetricsPort,
		Metrics:                 m.Handler(),
		Admin:                   admin,
		Probes:                  probes,
		MaxConnections:          c.MaxConnections,
		MaxConnectionsPerClient: c.MaxConnectionsPerClient,
		ShutdownDelay:           c.ShutdownDelay,
		ShutdownTimeout:         c.ShutdownTimeout,
	})
}

// Pod is what X-Served-By says of this process: POD_NAME, else the host name.
func (c Common) Pod() trail.Pod {
	pod := trail.Here(c.name, c.NodeName)
	if c.PodName != "" {
		pod.Name = c.PodName
	}
	return pod
}

// DiscoveryInputs are what this process's discovery view is made of: its environment, its
// resolver and the variables it reads (for the near-miss warnings).
func (c Common) DiscoveryInputs() discovery.Inputs {
	return discovery.ProcessInputs(c.environ, c.settings)
}

// Logger returns the JSON logger every service writes to stdout, one object per line. On
// Main's stdout, lines are batched and written out within 50 ms, and a warning or an error
// at once (with whatever was batched before it).
func (c Common) Logger(w io.Writer, service string) *slog.Logger {
	var handler slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.LogLevel})
	if batched, ok := w.(*logWriter); ok {
		handler = flushingWarnings{handler, batched}
	}
	return slog.New(requestid.LogHandler(handler)).With("service", service)
}

// flushingWarnings writes out a record at warn level or above as soon as it is logged.
type flushingWarnings struct {
	slog.Handler
	out *logWriter
}

func (h flushingWarnings) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.out.flush()
	}
	return err
}

func (h flushingWarnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingWarnings{h.Handler.WithAttrs(attrs), h.out}
}

func (h flushingWarnings) WithGroup(name string) slog.Handler {
	return flushingWarnings{h.Handler.WithGroup(name), h.out}
}

// Config is a service's settings: a struct with envconfig tags that embeds Common.
type Config interface {
	ListenPort() int
	Validate() error
	CommonSettings() Common
	setProcess(service string, settings, environ []string)
}

// CommonSettings returns the settings every service has (Config embeds Common for them).
func (c Common) CommonSettings() Common { return c }

// setProcess is called through Config, by Prepare: the services' configs embed Common.
//
//lint:ignore U1000 used through Config, whose implementations are in other packages
func (c *Common) setProcess(service string, settings, environ []string) {
	c.name, c.settings, c.environ = service, settings, environ
}

// Setup parses args and the environment into cfg (which may add flags of its own with a
// method Flags(*flag.FlagSet)): what main reads of the process, once. done reports that a
// flag did all there was to do (-env listed the variables, -healthcheck probed the running
// server), or that they could not be read: the caller returns err then. cfg is checked by
// Prepare, in run.
func Setup(name string, args []string, stdout io.Writer, cfg Config) (done bool, err error) {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	flags.SetOutput(stdout)
	healthcheck := flags.Bool("healthcheck", false, "probe the running server's /healthz on 127.0.0.1:$PORT; exit 0 if healthy, 1 if not")
	listEnv := flags.Bool("env", false, "list the environment variables read, as NAME<TAB>default<TAB>description, and exit")
	if f, ok := cfg.(interface{ Flags(*flag.FlagSet) }); ok {
		f.Flags(flags)
	}
	flags.Usage = func() {
		fmt.Fprintf(stdout, "Usage of %s:\n", name)
		flags.PrintDefaults()
		fmt.Fprintln(stdout, "\nEnvironment:")
		envconfig.Usagef("", cfg, stdout, envTable)
	}
	if err := flags.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, err
	}
	if *listEnv {
		return true, envconfig.Usagef("", cfg, stdout, envTable)
	}
	if err := envconfig.Process("", cfg); err != nil {
		return true, fmt.Errorf("configuration: %w", err)
	}
	if *healthcheck {
		return true, httpserver.Probe(cfg.ListenPort())
	}
	return false, nil
}

// Prepare checks cfg, the settings every service has and then the service's own, and records
// in it what Serve shows of the process: the service's name, and environ (NAME=value, as
// os.Environ gives it), where the discovery view looks for variables set wrong. It is the
// first thing a run does with the config main read (Setup) or a test built.
func Prepare(name string, cfg Config, environ []string) error {
	var settings strings.Builder
	envconfig.Usagef("", cfg, &settings, "{{range .}}{{usage_key .}}\n{{end}}")
	cfg.setProcess(name, strings.Fields(settings.String()), environ)
	if err := cfg.CommonSettings().validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

const envTable = "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"

// RunFunc is a service's run: everything main does once it has read the process, with what
// it read passed in, so that tests call it with their own: cfg (the flags and the
// environment, read by Setup) and environ (the environment itself, as os.Environ gives it,
// for the discovery view). It returns when ctx is cancelled and the service has drained.
type RunFunc[C Config] func(ctx context.Context, cfg C, environ []string, stdout io.Writer) error

// Main is a service's whole main: read the flags and the environment into cfg (Setup), then
// run until SIGINT or SIGTERM, then exit 0, or print the error and exit 1. What run writes
// to stdout (its logs) is written out at least every 50 ms, warnings and errors at once
// (through Common.Logger), and all of it before Main returns.
func Main[C Config](name string, cfg C, run RunFunc[C]) {
	if done, err := Setup(name, os.Args, os.Stdout, cfg); done {
		exit(err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stdout := newLogWriter(os.Stdout)
	err := run(ctx, cfg, os.Environ(), stdout)
	stdout.Close()
	stop()
	exit(err)
}

// exit prints err and exits 1, or returns when there is none.
func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
