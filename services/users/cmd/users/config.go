package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/kub-demo/kub-demo/platform/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/users/internal/accounts"
)

type config struct {
	Port        int           `envconfig:"PORT" default:"8080" desc:"port to listen on"`
	UsersFolder string        `envconfig:"USERS_FOLDER" default:"users" desc:"folder of users.jsonl (created if missing)"`
	DemoUser    string        `envconfig:"DEMO_USER" default:"test@gmail.com:testers" desc:"email:password of a user that exists out of the box; empty switches it off"`
	AuthTimeout time.Duration `envconfig:"AUTH_TIMEOUT" default:"3s" desc:"longest wait for one call to auth before answering 503"`
	discovery.AuthEnv
	service.Common
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
	_, err := c.AuthURL()
	return err
}
