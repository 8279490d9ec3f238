package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kub-demo/kub-demo/platform/metrics"
	"github.com/kub-demo/kub-demo/services/tasks/internal/filestore"
	"github.com/kub-demo/kub-demo/services/tasks/internal/pgstore"
	"github.com/kub-demo/kub-demo/services/tasks/internal/tasks"
)

// backend is the task store main serves: tasks.txt, or PostgreSQL when DATABASE_URL is set.
type backend struct {
	tasks.Store
	checkName string // what /readyz names while check fails
	check     func(context.Context) error
	close     func()
}

// openStore opens the store cfg chooses, with its metrics, and logs which it is.
func openStore(ctx context.Context, cfg *config, maxBytes int64, log *slog.Logger, m *metrics.Registry) (*backend, error) {
	// On PostgreSQL the same commit metrics as the file's: tasks_store_batch_records is the
	// tasks one transaction stored, _write_seconds its statements, _fsync_seconds its commit.
	opts := tasks.Options{Shared: cfg.TasksShared, MaxTasksPerUser: cfg.MaxTasksPerUser, MaxBytesPerUser: cfg.MaxBytesPerUser,
		OnCommit: m.Store("tasks").ObserveCommit}
	if cfg.DatabaseURL == "" {
		opts.MaxBytes = maxBytes
		store, err := filestore.Open(cfg.TasksFolder, log, opts)
		if err != nil {
			return nil, err
		}
		log.Info("task store", "backend", "file", "path", filepath.Join(cfg.TasksFolder, filestore.FileName))
		m.GaugeFunc("tasks_stored", "Tasks in tasks.txt.", func() float64 { return float64(store.Count()) })
		return &backend{Store: store, checkName: "tasks file", check: func(context.Context) error { return store.Check() }, close: func() { store.Close() }}, nil
	}

	db, err := pgstore.Open(cfg.Database(), opts, log)
	if err != nil {
		return nil, err
	}
	log.Info("task store", "backend", "postgres", "database", db.Endpoint(), "maxConns", db.MaxConns(), "timeout", cfg.DBTimeout.String())
	// Replicas may start before the database: ready once it is there and migrated.
	go db.WaitMigrated(ctx, time.Second)
	db.RegisterMetrics(m, "tasks_stored", "Tasks in the database.", db.Count)
	return &backend{Store: db, checkName: "database", check: db.Check, close: db.Close}, nil
}

// importTasks adds the tasks of a tasks.txt to DATABASE_URL (tasks -import FILE), and logs
// what it did.
func importTasks(ctx context.Context, cfg *config, log *slog.Logger) error {
	db, err := pgstore.Open(cfg.Database(), tasks.Options{}, log)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("importing", "file", cfg.importFrom, "database", db.Endpoint())
	n, err := db.Import(ctx, cfg.importFrom)
	log.Info("imported", "file", cfg.importFrom, "records", n.Read, "added", n.Added, "alreadyThere", n.Present, "skipped", n.Skipped)
	return err
}
