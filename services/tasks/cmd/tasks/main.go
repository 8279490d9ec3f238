// Command tasks is kub-demo's public tasks service: it lists and stores each user's tasks in
// tasks.txt, or in PostgreSQL (DATABASE_URL), after checking the caller's token with the auth
// service. "tasks -import FILE" adds the tasks of a tasks.txt to DATABASE_URL and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kub-demo/kub-demo/authapi"
	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/tasks/internal/server"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

func main() { service.Main("tasks", &config{}, run) }

// run serves with cfg, which main read from the flags and the environment (environ, which the
// discovery view shows), until ctx ends.
func run(ctx context.Context, cfg *config, environ []string, stdout io.Writer) error {
	if err := service.Prepare("tasks", cfg, environ); err != nil {
		return err
	}
	log := cfg.Logger(stdout, "tasks")
	if cfg.importFrom != "" {
		return importTasks(ctx, cfg, log)
	}
	auth, _ := cfg.AuthURL() // validated by Prepare
	maxBytes, maxBytesSource := cfg.maxBytes()
	log.Info("starting", "port", cfg.Port, "tasksFolder", cfg.TasksFolder, "tasksShared", cfg.TasksShared,
		"tasksPerUser", cfg.MaxTasksPerUser, "taskBytesPerUser", cfg.MaxBytesPerUser,
		"tasksMaxBytes", maxBytes, "tasksMaxBytesFrom", maxBytesSource,
		"authTimeout", cfg.AuthTimeout.String(), "authVerifyCache", cfg.VerifyCache.String(), "authApiKey", cfg.AuthAPIKey != "")
	log.Info("auth service found", "url", auth.URL, "source", auth.Source)
	if cfg.AuthAPIKey == "" {
		log.Warn("AUTH_API_KEY is not set: auth will refuse this service unless it runs with DEV_MODE=true")
	}

	m := metrics.New()
	tasks, err := openStore(ctx, cfg, maxBytes, log, m)
	if errors.Is(err, recordlog.ErrOverLimit) {
		return fmt.Errorf("%w; the limit is %s: raise it, and the memory limit with it, or move the tasks to PostgreSQL (DATABASE_URL, then tasks -import)", err, maxBytesSource)
	}
	if err != nil {
		return err
	}
	defer tasks.close()
	authClient := authapi.NewClient(authapi.Config{URL: auth.URL, APIKey: cfg.AuthAPIKey, Timeout: cfg.AuthTimeout,
		VerifyCache: cfg.VerifyCache, VerifyCacheEntries: cfg.VerifyCacheSize, Observe: m.AuthCalls()})
	go authClient.WaitAnswered(ctx, log, time.Second)

	probes := httpserver.NewProbes(log)
	probes.AddCheck("auth does not answer, or refuses AUTH_API_KEY", authClient.Ready)
	probes.AddCheck(tasks.checkName, tasks.check)
	handler := server.Routes(server.Deps{Log: log, Probes: probes, Metrics: m, Tasks: tasks, Auth: authClient})
	return cfg.Serve(ctx, log, cfg.Port, handler, m, probes,
		discovery.Peer{Name: "auth", Service: "auth-service", Found: auth})
}
