package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
	"github.com/kub-demo/kub-demo/services/users/internal/throttle"
	"github.com/kub-demo/kub-demo/storage/pgdb"
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
	InFlight                int           `envconfig:"LOGINS_IN_FLIGHT" default:"4" desc:"logins and signups at auth at once from this process, from every client (4 times more wait in a line where the addresses with the fewest turns of late go first, up to AUTH_TIMEOUT; past either, 503); at most auth's bcrypt places; 0 switches it off"`
	TrustedProxies          string        `envconfig:"TRUSTED_PROXIES" desc:"comma-separated CIDRs or addresses of proxies (an ingress, the frontend) whose X-Forwarded-For names the client for the limits per address; empty: the TCP peer is the client"`
	UsersMaxBytes           int64         `envconfig:"USERS_MAX_BYTES" desc:"size limit of users.jsonl; default: derived from the memory limit (GOMEMLIMIT)"`
	discovery.AuthEnv
	pgdb.Env
	service.Common

	importFrom string // -import FILE: import FILE into DATABASE_URL and exit
}

func (c *config) ListenPort() int { return c.Port }

const (
	// knownLoginsFor is how long an address that logged in to an account stays known to it:
	// past the failure limits, an address logs in only where it is known.
	knownLoginsFor = 7 * 24 * time.Hour
	// fairHalfLife is how fast an address's turns at auth are forgotten in the line for it,
	// and fairLine how many wait in it per place (LOGINS_IN_FLIGHT): past that, the one
	// that has had most turns of late is answered 503 at once.
	fairHalfLife = 10 * time.Second
	fairLine     = 4
)

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
	if _, err := throttle.ParseProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	if c.UsersMaxBytes < 0 {
		return fmt.Errorf("USERS_MAX_BYTES=%d must not be negative", c.UsersMaxBytes)
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
	flags.StringVar(&c.importFrom, "import", "", "import this users.jsonl into DATABASE_URL (records there already are left as they are), then exit")
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
