package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kub-demo/kub-demo/platform/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/pgusers"
)

type config struct {
	Port                    int           `envconfig:"PORT" default:"8080" desc:"port to listen on"`
	UsersFolder             string        `envconfig:"USERS_FOLDER" default:"users" desc:"folder of users.jsonl (created if missing)"`
	DemoUser                string        `envconfig:"DEMO_USER" default:"test@gmail.com:testers" desc:"email:password of a user that exists out of the box; empty switches it off"`
	AuthTimeout             time.Duration `envconfig:"AUTH_TIMEOUT" default:"3s" desc:"longest wait for one call to auth before answering 503"`
	AuthAPIKey              string        `envconfig:"AUTH_API_KEY" desc:"service credential sent to auth (the same value as auth's)"`
	LoginFailuresPerClient  int           `envconfig:"LOGIN_FAILURES_PER_CLIENT" default:"20" desc:"failed logins a client address may make per THROTTLE_WINDOW before 429; 0 switches it off"`
	LoginFailuresPerAccount int           `envconfig:"LOGIN_FAILURES_PER_ACCOUNT" default:"10" desc:"failed logins an account may take per THROTTLE_WINDOW before 429; 0 switches it off"`
	SignupsPerClient        int           `envconfig:"SIGNUPS_PER_CLIENT" default:"20" desc:"signups a client address may make per THROTTLE_WINDOW before 429; 0 switches it off"`
	ThrottleWindow          time.Duration `envconfig:"THROTTLE_WINDOW" default:"1m" desc:"the window of the three limits above (each refills evenly over it)"`
	InFlightPerClient       int           `envconfig:"LOGINS_IN_FLIGHT_PER_CLIENT" default:"4" desc:"logins and signups of one client address at auth at once (more wait, up to AUTH_TIMEOUT, then 429); 0 switches it off"`
	UsersMaxBytes           int64         `envconfig:"USERS_MAX_BYTES" desc:"size limit of users.jsonl; default: derived from the memory limit (GOMEMLIMIT)"`
	DatabaseURL             string        `envconfig:"DATABASE_URL" desc:"PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require): keep the users there instead of in users.jsonl; empty: users.jsonl"`
	DBMaxConns              int32         `envconfig:"DB_MAX_CONNS" default:"4" desc:"with DATABASE_URL: connections this process opens to the database at most"`
	DBTimeout               time.Duration `envconfig:"DB_TIMEOUT" default:"5s" desc:"with DATABASE_URL: longest wait for one database call, a free connection included, before answering 503"`
	discovery.AuthEnv
	service.Common

	importFrom string // -import FILE: import FILE into DATABASE_URL and exit
}

func (c *config) ListenPort() int { return c.Port }

func (c *config) Validate() error {
	if _, err := accounts.ParseDemoUser(c.DemoUser); err != nil {
		return err
	}
	if c.AuthTimeout <= 0 {
		return fmt.Errorf("AUTH_TIMEOUT=%s must be positive", c.AuthTimeout)
	}
	if c.UsersFolder == "" {
		return errors.New("USERS_FOLDER must not be empty")
	}
	if c.ThrottleWindow <= 0 {
		return fmt.Errorf("THROTTLE_WINDOW=%s must be positive", c.ThrottleWindow)
	}
	if c.UsersMaxBytes < 0 {
		return fmt.Errorf("USERS_MAX_BYTES=%d must not be negative", c.UsersMaxBytes)
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
func (c *config) database() pgusers.Config {
	return pgusers.Config{URL: c.DatabaseURL, MaxConns: c.DBMaxConns, Timeout: c.DBTimeout}
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
				return nil, errors.New("-import needs a file: users -import /path/to/users.jsonl")
			}
			i++
			value = args[i]
		}
		c.importFrom = value
	}
	return rest, nil
}

// maxBytes is USERS_MAX_BYTES, or the store ceiling of the memory this process may use: the
// users are kept in memory, so the file must always fit there to be loaded again.
func (c *config) maxBytes() (int64, string) {
	if c.UsersMaxBytes > 0 {
		return c.UsersMaxBytes, "USERS_MAX_BYTES"
	}
	limit, source := service.MemoryLimit()
	// Half the ceiling: a user in memory (its map entry, struct and strings) takes about
	// twice the bytes of its line.
	return service.StoreCeiling(limit) / 2, "half the store ceiling of " + source
}
