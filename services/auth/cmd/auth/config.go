package main

import (
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/auth/internal/token"
)

type config struct {
	Port        int           `envconfig:"PORT" default:"80" desc:"port to listen on"`
	JWTSecret   string        `envconfig:"JWT_SECRET" required:"true" desc:"key that signs tokens (HS256), at least 32 bytes; required"`
	BcryptCost  int           `envconfig:"BCRYPT_COST" default:"10" desc:"bcrypt cost for password hashes (4 to 31)"`
	TokenTTL    time.Duration `envconfig:"TOKEN_TTL" default:"1h" desc:"how long a token stays valid"`
	TokenIssuer string        `envconfig:"TOKEN_ISSUER" default:"kub-demo" desc:"issuer (iss) written into and required of tokens"`
	service.Common
}

func (c *config) ListenPort() int { return c.Port }

func (c *config) Validate() error {
	if len(c.JWTSecret) < token.MinSecretBytes {
		return fmt.Errorf("JWT_SECRET has %d bytes; it needs at least %d (try: openssl rand -base64 48)", len(c.JWTSecret), token.MinSecretBytes)
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("BCRYPT_COST=%d is outside %d to %d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.TokenTTL <= 0 {
		return fmt.Errorf("TOKEN_TTL=%s must be positive", c.TokenTTL)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("PORT=%d is not a port", c.Port)
	}
	return nil
}
