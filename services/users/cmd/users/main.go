// Command users is kub-demo's public users service: signup and login, with passwords hashed
// and tokens issued by the auth service. Users are kept in users.jsonl, or in PostgreSQL
// (DATABASE_URL); "users -import FILE" adds the users of a users.jsonl to DATABASE_URL and exits.
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
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/server"
	"github.com/kub-demo/kub-demo/services/users/internal/throttle"
	"github.com/kub-demo/kub-demo/storage/recordlog"
)

func main() { service.Main("users", &config{}, run) }

// run serves with cfg, which main read from the flags and the environment (environ, which the
// discovery view shows), until ctx ends.
func run(ctx context.Context, cfg *config, environ []string, stdout io.Writer) error {
	if err := service.Prepare("users", cfg, environ); err != nil {
		return err
	}
	log := cfg.Logger(stdout, "users")
	if cfg.importFrom != "" {
		return importUsers(ctx, cfg, log)
	}
	auth, _ := cfg.AuthURL() // validated by Prepare
	demo, _ := accounts.ParseDemoUser(cfg.DemoUser)
	maxBytes, maxBytesSource := cfg.maxBytes()
	log.Info("starting", "port", cfg.Port, "usersFolder", cfg.UsersFolder, "demoUser", demo != nil, "authTimeout", cfg.AuthTimeout.String(),
		"usersMaxBytes", maxBytes, "usersMaxBytesFrom", maxBytesSource, "authApiKey", cfg.AuthAPIKey != "")
	log.Info("auth service found", "url", auth.URL, "source", auth.Source)
	if cfg.AuthAPIKey == "" {
		log.Warn("AUTH_API_KEY is not set: auth will refuse this service unless it runs with DEV_MODE=true")
	}

	m := metrics.New()
	store, err := openStore(ctx, cfg, maxBytes, log, m)
	if errors.Is(err, recordlog.ErrOverLimit) {
		return fmt.Errorf("%w; the limit is %s: raise it, and the memory limit with it, or move the users to PostgreSQL (DATABASE_URL, then users -import)", err, maxBytesSource)
	}
	if err != nil {
		return err
	}
	defer store.close()
	authClient := authapi.NewClient(authapi.Config{URL: auth.URL, APIKey: cfg.AuthAPIKey, Timeout: cfg.AuthTimeout, Observe: m.AuthCalls()})
	accts := accounts.New(store, authClient, demo, log)
	go func() {
		authClient.WaitAnswered(ctx, log, time.Second)
		accts.CreateDemoUser(ctx, time.Second)
	}()

	probes := httpserver.NewProbes(log)
	probes.AddCheck("auth does not answer, or refuses AUTH_API_KEY", authClient.Ready)
	probes.AddCheck("the demo user is not created yet", httpserver.ReadyWhen(accts.DemoReady))
	probes.AddCheck(store.checkName, store.check)
	proxies, _ := throttle.ParseProxies(cfg.TrustedProxies) // validated with the config
	limits := server.Throttles{
		Proxies:                 proxies,
		LoginFailuresPerClient:  throttle.New(cfg.LoginFailuresPerClient, cfg.ThrottleWindow, throttle.DefaultMaxKeys),
		LoginFailuresPerAccount: throttle.New(cfg.LoginFailuresPerAccount, cfg.ThrottleWindow, throttle.DefaultMaxKeys),
		KnownLogins:             throttle.NewSeen(knownLoginsFor, throttle.DefaultMaxKeys),
		SignupsPerClient:        throttle.New(cfg.SignupsPerClient, cfg.ThrottleWindow, throttle.DefaultMaxKeys),
		InFlightPerClient:       throttle.NewGate(cfg.InFlightPerClient),
		AtAuth:                  throttle.NewFair(cfg.InFlight, fairLine*cfg.InFlight, fairHalfLife, throttle.DefaultMaxKeys),
		WaitForPlace:            cfg.AuthTimeout,
	}
	handler := server.Routes(server.Deps{Log: log, Probes: probes, Metrics: m, Accounts: accts, Throttles: limits})
	return cfg.Serve(ctx, log, cfg.Port, handler, m, probes,
		discovery.Peer{Name: "auth", Service: "auth-service", Found: auth})
}
