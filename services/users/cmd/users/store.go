package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/filestore"
	"github.com/kub-demo/kub-demo/services/users/internal/pgstore"
)

// backend is the user store main serves: users.jsonl, or PostgreSQL when DATABASE_URL is set.
type backend struct {
	accounts.Store
	checkName string // what /readyz names while check fails
	check     func(context.Context) error
	close     func()
}

// openStore opens the store cfg chooses, with its metrics, and logs which it is.
func openStore(ctx context.Context, cfg *config, maxBytes int64, log *slog.Logger, m *metrics.Registry) (*backend, error) {
	if cfg.DatabaseURL == "" {
		users, err := filestore.Open(cfg.UsersFolder, log, m.Store("users").ObserveCommit, maxBytes)
		if err != nil {
			return nil, err
		}
		log.Info("user store", "backend", "file", "path", filepath.Join(cfg.UsersFolder, filestore.FileName))
		m.GaugeFunc("users_stored", "Users in users.jsonl.", func() float64 { return float64(users.Count()) })
		return &backend{Store: users, checkName: "users file", check: func(context.Context) error { return users.Check() }, close: func() { users.Close() }}, nil
	}

	db, err := pgstore.Open(cfg.Database(), log)
	if err != nil {
		return nil, err
	}
	log.Info("user store", "backend", "postgres", "database", db.Endpoint(), "maxConns", db.MaxConns(), "timeout", cfg.DBTimeout.String())
	// Replicas may start before the database: ready once it is there and migrated.
	go db.WaitMigrated(ctx, time.Second)
	db.RegisterMetrics(m, "users_stored", "Users in the database.", db.Count)
	return &backend{Store: db, checkName: "database", check: db.Check, close: db.Close}, nil
}

// importUsers adds the users of a users.jsonl to DATABASE_URL (users -import FILE), and logs
// what it did.
func importUsers(ctx context.Context, cfg *config, log *slog.Logger) error {
	db, err := pgstore.Open(cfg.Database(), log)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("importing", "file", cfg.importFrom, "database", db.Endpoint())
	n, err := db.Import(ctx, cfg.importFrom)
	log.Info("imported", "file", cfg.importFrom, "users", n.Read, "added", n.Added, "alreadyThere", n.Present, "skipped", n.Skipped)
	return err
}
