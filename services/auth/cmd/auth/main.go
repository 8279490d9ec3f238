// Command auth is kub-demo's internal auth service: it hashes passwords and issues and
// verifies signed tokens for users and tasks. It must not be reachable from outside.
package main

import (
	"context"
	"io"

	"github.com/kub-demo/kub-demo/platform/httpserver"
	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/auth/internal/password"
	"github.com/kub-demo/kub-demo/services/auth/internal/server"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

func main() { service.Main(run) }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg config
	if done, err := service.Setup("auth", args, stdout, &cfg); done {
		return err
	}
	log := cfg.Logger(stdout, "auth")
	log.Info("starting", "port", cfg.Port, "bcryptCost", cfg.BcryptCost, "tokenTTL", cfg.TokenTTL.String(),
		"tokenIssuer", cfg.TokenIssuer, "jwtSecret", "set, not shown")

	hasher, err := password.NewHasher(cfg.BcryptCost)
	if err != nil {
		return err
	}
	issuer, err := token.NewIssuer([]byte(cfg.JWTSecret), cfg.TokenIssuer, cfg.TokenTTL)
	if err != nil {
		return err
	}
	probes := &httpserver.Probes{}
	return httpserver.Run(ctx, log, httpserver.Options{
		Port:            cfg.Port,
		Handler:         server.Routes(log, probes, metrics.New(), hasher, issuer),
		Probes:          probes,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})
}
