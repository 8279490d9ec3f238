// Command frontend is kub-demo's web UI: it serves the tasks page and forwards the page's
// /api/ calls to users and tasks with the prefix removed, as the course's nginx does.
package main

import (
	"context"
	"io"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/frontend/internal/proxy"
	"github.com/kub-demo/kub-demo/services/frontend/internal/server"
	"github.com/kub-demo/kub-demo/services/frontend/internal/ui"
)

func main() { service.Main("frontend", &config{}, run) }

// run serves with cfg, which main read from the flags and the environment (environ, which the
// discovery view shows), until ctx ends.
func run(ctx context.Context, cfg *config, environ []string, stdout io.Writer) error {
	if err := service.Prepare("frontend", cfg, environ); err != nil {
		return err
	}
	log := cfg.Logger(stdout, "frontend")
	// Validated by Prepare.
	usersAt, _ := cfg.users()
	tasksAt, _ := cfg.tasks()
	pageCfg, _ := cfg.page()
	log.Info("starting", "port", cfg.Port, "apiMode", pageCfg.Mode, "pageUsersURL", pageCfg.UsersURL,
		"pageTasksURL", pageCfg.TasksURL, "upstreamTimeout", cfg.Timeout.String(), "upstreamIdleTimeout", cfg.IdleTimeout.String())
	log.Info("users service found", "url", usersAt.URL, "source", usersAt.Source)
	log.Info("tasks service found", "url", tasksAt.URL, "source", tasksAt.Source)

	page, err := ui.NewPage(pageCfg)
	if err != nil {
		return err
	}
	transport := proxy.NewTransport(proxy.Options{Timeout: cfg.Timeout, IdleTimeout: cfg.IdleTimeout})
	defer transport.CloseIdleConnections()
	users, err := proxy.New(log, proxy.Upstream{Name: "users", URL: usersAt.URL}, transport)
	if err != nil {
		return err
	}
	tasks, err := proxy.New(log, proxy.Upstream{Name: "tasks", URL: tasksAt.URL}, transport)
	if err != nil {
		return err
	}
	// Ready without users or tasks: the page loads, and says which of them cannot be reached.
	probes := httpserver.NewProbes(log)
	m := metrics.New()
	peers := []discovery.Peer{
		{Name: "users", Service: "users-service", Found: usersAt},
		{Name: "tasks", Service: "tasks-service", Found: tasksAt},
	}
	handler := server.Routes(server.Deps{Log: log, Probes: probes, Metrics: m, Page: page, Users: users, Tasks: tasks,
		Network: chainView(cfg, peers).Handler()})
	return cfg.Serve(ctx, log, cfg.Port, handler, m, probes, peers...)
}
