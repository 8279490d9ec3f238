package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

type config struct {
	Port               int           `envconfig:"PORT" default:"80" desc:"port to listen on"`
	JWTSecret          string        `envconfig:"JWT_SECRET" desc:"key that signs tokens (HS256), at least 32 bytes; required"`
	JWTPreviousSecrets string        `envconfig:"JWT_PREVIOUS_SECRETS" desc:"comma-separated older signing keys, still accepted until their tokens expire (key rotation)"`
	APIKey             string        `envconfig:"AUTH_API_KEY" desc:"service credential users and tasks must present, at least 32 bytes; required unless DEV_MODE=true"`
	DevMode            bool          `envconfig:"DEV_MODE" default:"false" desc:"a development run: without AUTH_API_KEY every caller is trusted (never in production)"`
	BcryptCost         int           `envconfig:"BCRYPT_COST" default:"10" desc:"bcrypt cost for password hashes (4 to 31); hashes of a higher cost are refused"`
	BcryptQueuePerCPU  int           `envconfig:"BCRYPT_QUEUE_PER_CPU" default:"2" desc:"bcrypt runs that may wait per CPU; past that auth answers 503 at once"`
	TokenTTL           time.Duration `envconfig:"TOKEN_TTL" default:"1h" desc:"how long a token stays valid"`
	TokenLeeway        time.Duration `envconfig:"TOKEN_LEEWAY" default:"30s" desc:"clock difference between replicas tolerated on a token's times"`
	TokenIssuer        string        `envconfig:"TOKEN_ISSUER" default:"kub-demo" desc:"issuer (iss) written into and required of tokens"`
	service.Common
}

// minAPIKeyBytes is the shortest AUTH_API_KEY accepted.
const minAPIKeyBytes = 32

func (c *config) ListenPort() int { return c.Port }

func (c *config) Validate() error {
	if c.JWTSecret == "" {
		// Said here rather than by envconfig's "required key JWT_SECRET missing value", which
		// tells a newcomer running bin/auth by hand neither what it is nor what to do.
		return fmt.Errorf("JWT_SECRET is not set: it is the key auth signs tokens with, at least %d bytes "+
			"(try: export JWT_SECRET=\"$(openssl rand -base64 48)\"). make run sets development values of it and of AUTH_API_KEY", token.MinSecretBytes)
	}
	if len(c.JWTSecret) < token.MinSecretBytes {
		return fmt.Errorf("JWT_SECRET has %d bytes; it needs at least %d (try: openssl rand -base64 48)", len(c.JWTSecret), token.MinSecretBytes)
	}
	for n, previous := range c.previousSecrets() {
		if len(previous) < token.MinSecretBytes {
			return fmt.Errorf("JWT_PREVIOUS_SECRETS: key %d has %d bytes; it needs at least %d", n+1, len(previous), token.MinSecretBytes)
		}
	}
	switch {
	case c.APIKey == "" && !c.DevMode:
		return errors.New("AUTH_API_KEY is not set: auth serves only callers that present it (users and tasks get the same value); " +
			"try: openssl rand -base64 48. For a development run without one, set DEV_MODE=true")
	case c.APIKey != "" && len(c.APIKey) < minAPIKeyBytes:
		return fmt.Errorf("AUTH_API_KEY has %d bytes; it needs at least %d (try: openssl rand -base64 48)", len(c.APIKey), minAPIKeyBytes)
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("BCRYPT_COST=%d is outside %d to %d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.BcryptQueuePerCPU < 0 {
		return fmt.Errorf("BCRYPT_QUEUE_PER_CPU=%d must not be negative", c.BcryptQueuePerCPU)
	}
	if c.TokenTTL <= 0 {
		return fmt.Errorf("TOKEN_TTL=%s must be positive", c.TokenTTL)
	}
	if c.TokenLeeway < 0 {
		return fmt.Errorf("TOKEN_LEEWAY=%s must not be negative", c.TokenLeeway)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("PORT=%d is not a port", c.Port)
	}
	return nil
}

// previousSecrets is JWT_PREVIOUS_SECRETS split at commas, blanks left out.
func (c *config) previousSecrets() [][]byte {
	var keys [][]byte
	for _, k := range strings.Split(c.JWTPreviousSecrets, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, []byte(k))
		}
	}
	return keys
}

// bcryptWorkers is one bcrypt run per CPU the Go runtime may use (GOMAXPROCS: the CPUs, or
// the container's CPU limit), read once per process. With every worker hashing, a token check
// waits for the scheduler to preempt a bcrypt run (at most 10 ms); tasks' verified-token
// cache spares most token checks that wait altogether.
var bcryptWorkers = sync.OnceValue(func() int { return runtime.GOMAXPROCS(0) })
