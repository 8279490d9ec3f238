package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kub-demo/kub-demo/platform/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/tasks/internal/pgstore"
)

type config struct {
	Port            int           `envconfig:"PORT" default:"8000" desc:"port to listen on"`
	TasksFolder     string        `envconfig:"TASKS_FOLDER" default:"tasks" desc:"folder of tasks.txt (created if missing)"`
	TasksShared     bool          `envconfig:"TASKS_SHARED" default:"false" desc:"true: every user sees every task (the course's one shared list); false: their own and those with no owner"`
	MaxTasksPerUser int           `envconfig:"TASKS_PER_USER" default:"1000" desc:"tasks one user may store; 0: no limit"`
	MaxBytesPerUser int64         `envconfig:"TASK_BYTES_PER_USER" default:"1048576" desc:"bytes one user's tasks may take in tasks.txt; 0: no limit"`
	TasksMaxBytes   int64         `envconfig:"TASKS_MAX_BYTES" desc:"size limit of tasks.txt; default: derived from the memory limit (GOMEMLIMIT)"`
	AuthTimeout     time.Duration `envconfig:"AUTH_TIMEOUT" default:"3s" desc:"longest wait for one call to auth before answering 503"`
	AuthAPIKey      string        `envconfig:"AUTH_API_KEY" desc:"service credential sent to auth (the same value as auth's)"`
	DatabaseURL     string        `envconfig:"DATABASE_URL" desc:"PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require): keep the tasks there instead of in tasks.txt; empty: tasks.txt"`
	DBMaxConns      int32         `envconfig:"DB_MAX_CONNS" default:"4" desc:"with DATABASE_URL: connections this process opens to the database at most"`
	DBTimeout       time.Duration `envconfig:"DB_TIMEOUT" default:"5s" desc:"with DATABASE_URL: longest wait for one database call, a free connection included, before answering 503"`
	discovery.AuthEnv
	service.Common

	importFrom string // -import FILE: import FILE into DATABASE_URL and exit
}

func (c *config) ListenPort() int { return c.Port }

func (c *config) Validate() error {
	if c.AuthTimeout <= 0 {
		return fmt.Errorf("AUTH_TIMEOUT=%s must be positive", c.AuthTimeout)
	}
	if c.TasksFolder == "" {
		return errors.New("TASKS_FOLDER must not be empty")
	}
	if c.MaxTasksPerUser < 0 || c.MaxBytesPerUser < 0 || c.TasksMaxBytes < 0 {
		return errors.New("TASKS_PER_USER, TASK_BYTES_PER_USER and TASKS_MAX_BYTES must not be negative")
	}
	if c.DBMaxConns < 1 || c.DBTimeout <= 0 {
		return fmt.Errorf("DB_MAX_CONNS=%d must be at least 1 and DB_TIMEOUT=%s positive", c.DBMaxConns, c.DBTimeout)
	}
	if c.importFrom != "" {
		if c.DatabaseURL == "" {
			return errors.New("-import needs DATABASE_URL: the database to import into")
		}
		return nil // an import does not call auth
	}
	_, err := c.AuthURL()
	return err
}

// database is how the PostgreSQL store reaches DATABASE_URL.
func (c *config) database() pgstore.Config {
	return pgstore.Config{URL: c.DatabaseURL, MaxConns: c.DBMaxConns, Timeout: c.DBTimeout}
}

// takeImportFlag takes -import FILE (or -import=FILE) out of args, before service.Setup
// parses the flags every service has, and keeps it in c.
func (c *config) takeImportFlag(args []string) ([]string, error) {
	rest := []string{args[0]}
	for i := 1; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(args[i], "-"), "=")
		if name != "-import" && name != "import" {
			rest = append(rest, args[i])
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, errors.New("-import needs a file: tasks -import /path/to/tasks.txt")
			}
			i++
			value = args[i]
		}
		c.importFrom = value
	}
	return rest, nil
}

// maxBytes is TASKS_MAX_BYTES, or the store ceiling of the memory this process may use: the
// tasks are kept in memory, so the file must always fit there to be loaded again.
func (c *config) maxBytes() (int64, string) {
	if c.TasksMaxBytes > 0 {
		return c.TasksMaxBytes, "TASKS_MAX_BYTES"
	}
	limit, source := service.MemoryLimit()
	return service.StoreCeiling(limit), "the store ceiling of " + source
}
