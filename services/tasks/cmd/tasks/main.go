// Command tasks is kub-demo's public tasks service: it lists and stores tasks in tasks.txt
// after checking the caller's token with the auth service.
package main

import (
	"context"
	"io"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/tasks/internal/server"
	"github.com/kub-demo/kub-demo/services/tasks/internal/store"
)

func main() { service.Main(run) }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg config
	if done, err := service.Setup("tasks", args, stdout, &cfg); done {
		return err
	}
	log := cfg.Logger(stdout, "tasks")
	auth, _ := cfg.AuthURL() // validated by Setup
	log.Info("starting", "port", cfg.Port, "tasksFolder", cfg.TasksFolder, "authTimeout", cfg.AuthTimeout.String())
	log.Info("auth service found", "url", auth.URL, "source", auth.Source)

	m := metrics.New()
	tasks, err := store.Open(cfg.TasksFolder, log, m.Store("tasks").ObserveCommit)
	if err != nil {
		return err
	}
	defer tasks.Close()
	m.GaugeFunc("tasks_stored", "Tasks in tasks.txt.", func() float64 { return float64(tasks.Count()) })
	authClient := authapi.NewClient(auth.URL, cfg.AuthTimeout, m.AuthCalls())

	probes := &httpserver.Probes{}
	return httpserver.Run(ctx, log, httpserver.Options{
		Port:            cfg.Port,
		Handler:         server.Routes(log, probes, m, tasks, authClient),
		Probes:          probes,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
}
