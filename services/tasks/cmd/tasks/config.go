package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/kub-demo/kub-demo/platform/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
)

type config struct {
	Port        int           `envconfig:"PORT" default:"8000" desc:"port to listen on"`
	TasksFolder string        `envconfig:"TASKS_FOLDER" default:"tasks" desc:"folder of tasks.txt (created if missing)"`
	AuthTimeout time.Duration `envconfig:"AUTH_TIMEOUT" default:"3s" desc:"longest wait for one call to auth before answering 503"`
	discovery.AuthEnv
	service.Common
}

func (c *config) ListenPort() int { return c.Port }

func (c *config) Validate() error {
	if c.AuthTimeout <= 0 {
		return fmt.Errorf("AUTH_TIMEOUT=%s must be positive", c.AuthTimeout)
	}
	if c.TasksFolder == "" {
		return errors.New("TASKS_FOLDER must not be empty")
	}
	_, err := c.AuthURL()
	return err
}
