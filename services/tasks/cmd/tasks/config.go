package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/storage/pgdb"
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
	VerifyCache     time.Duration `envconfig:"AUTH_VERIFY_CACHE" default:"10s" desc:"how long a token auth verified is accepted without asking auth again (never past its expiry); 0: ask auth on every request"`
	VerifyCacheSize int           `envconfig:"AUTH_VERIFY_CACHE_ENTRIES" default:"10000" desc:"verified tokens remembered at once (about 200 bytes each)"`
	discovery.AuthEnv
	pgdb.Env
	service.Common

	importFrom string // -import FILE: import FILE into DATABASE_URL and exit
}

func (c *config) ListenPort() int { return c.Port }

func (c *config) Validate() error {
	if c.AuthTimeout <= 0 {
		return fmt.Errorf("AUTH_TIMEOUT=%s must be positive", c.AuthTimeout)
	}
	if c.VerifyCache < 0 || c.VerifyCacheSize < 1 {
		return fmt.Errorf("AUTH_VERIFY_CACHE=%s must not be negative, AUTH_VERIFY_CACHE_ENTRIES=%d at least 1", c.VerifyCache, c.VerifyCacheSize)
	}
	if c.TasksFolder == "" {
		return errors.New("TASKS_FOLDER must not be empty")
	}
	if c.MaxTasksPerUser < 0 || c.MaxBytesPerUser < 0 || c.TasksMaxBytes < 0 {
		return errors.New("TASKS_PER_USER, TASK_BYTES_PER_USER and TASKS_MAX_BYTES must not be negative")
	}
	if err := c.ValidateDatabase(); err != nil {
		return err
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

// Flags adds -import to the flags every service has.
func (c *config) Flags(flags *flag.FlagSet) {
	flags.StringVar(&c.importFrom, "import", "", "import this tasks.txt into DATABASE_URL (records there already are left as they are), then exit")
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
