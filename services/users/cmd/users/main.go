// Command users is kub-demo's public users service: signup and login, with passwords hashed
// and tokens issued by the auth service.
package main

import (
	"context"
	"io"
	"time"

	"github.com/kub-demo/kub-demo/platform/authapi"
	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/server"
)

func main() { service.Main(run) }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg config
	if done, err := service.Setup("users", args, stdout, &cfg); done {
		return err
	}
	log := cfg.Logger(stdout, "users")
	auth, _ := cfg.AuthURL() // validated by Setup
	demo, _ := accounts.ParseDemoUser(cfg.DemoUser)
	log.Info("starting", "port", cfg.Port, "usersFolder", cfg.UsersFolder, "demoUser", demo != nil, "authTimeout", cfg.AuthTimeout.String())
	log.Info("auth service found", "url", auth.URL, "source", auth.Source)

	m := metrics.New()
	store, err := accounts.OpenStore(cfg.UsersFolder, log, m.Store("users").ObserveCommit)
	if err != nil {
		return err
	}
	defer store.Close()
	m.GaugeFunc("users_stored", "Users in users.jsonl.", func() float64 { return float64(store.Count()) })
	accts := accounts.New(store, authapi.NewClient(auth.URL, cfg.AuthTimeout, m.AuthCalls()), demo, log)
	go accts.SeedDemoUser(ctx, time.Second)

	probes := &httpserver.Probes{}
	return httpserver.Run(ctx, log, httpserver.Options{
		Port:            cfg.Port,
		Handler:         server.Routes(log, probes, m, accts),
		Probes:          probes,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
}
