// Command auth is kub-demo's internal auth service: it hashes passwords and issues and
// verifies signed tokens for users and tasks. It must not be reachable from outside, and
// serves only callers that present AUTH_API_KEY.
package main

import (
	"context"
	"io"
	"runtime"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/server"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

func main() { service.Main("auth", &config{}, run) }

// run serves with cfg, which main read from the flags and the environment (environ, which the
// discovery view shows), until ctx ends.
func run(ctx context.Context, cfg *config, environ []string, stdout io.Writer) error {
	if err := service.Prepare("auth", cfg, environ); err != nil {
		return err
	}
	log := cfg.Logger(stdout, "auth")
	workers := bcryptWorkers()
	runtime.GOMAXPROCS(workers) // the same every run, however often tests call it
	previous := cfg.previousSecrets()
	hasher, err := password.NewHasher(password.Options{Cost: cfg.BcryptCost, Workers: workers, Queue: workers * cfg.BcryptQueuePerCPU})
	if err != nil {
		return err
	}
	issuer, err := token.NewIssuer(token.Options{
		Secret: []byte(cfg.JWTSecret), Previous: previous,
		Issuer: cfg.TokenIssuer, TTL: cfg.TokenTTL, Leeway: cfg.TokenLeeway,
	})
	if err != nil {
		return err
	}
	log.Info("starting", "port", cfg.Port, "bcryptCost", cfg.BcryptCost, "bcryptWorkers", workers,
		"bcryptQueue", workers*cfg.BcryptQueuePerCPU, "tokenTTL", cfg.TokenTTL.String(), "tokenLeeway", cfg.TokenLeeway.String(),
		"tokenIssuer", cfg.TokenIssuer, "jwtSecret", "set, not shown", "signingKeyId", issuer.SigningKeyID(),
		"previousKeys", len(previous), "apiKey", cfg.APIKey != "")
	if cfg.APIKey == "" {
		log.Warn("DEV_MODE: no AUTH_API_KEY, so any caller that reaches auth is trusted; never run like this outside a development machine")
	}

	m := metrics.New()
	probes := httpserver.NewProbes(log)
	handler := server.Routes(server.Deps{Log: log, Probes: probes, Metrics: m, Hasher: hasher, Issuer: issuer, APIKey: cfg.APIKey})
	return cfg.Serve(ctx, log, cfg.Port, handler, m, probes)
}
