package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/service"
	"github.com/kub-demo/kub-demo/services/frontend/internal/chainview"
	"github.com/kub-demo/kub-demo/services/frontend/internal/ui"
)

type config struct {
	Port int `envconfig:"PORT" default:"3000" desc:"port to listen on"`
	// users and tasks are found the ways auth is (package discovery).
	UsersAddress     string `envconfig:"USERS_ADDRESS" desc:"users' host or host:port (port 8080 when absent); wins over the injected pair"`
	UsersServiceHost string `envconfig:"USERS_SERVICE_SERVICE_HOST" desc:"injected by Kubernetes for a Service named users-service; used when USERS_ADDRESS is unset"`
	UsersServicePort string `envconfig:"USERS_SERVICE_SERVICE_PORT" desc:"injected by Kubernetes with USERS_SERVICE_SERVICE_HOST (8080 when absent)"`
	TasksAddress     string `envconfig:"TASKS_ADDRESS" desc:"tasks' host or host:port (port 8000 when absent); wins over the injected pair"`
	TasksServiceHost string `envconfig:"TASKS_SERVICE_SERVICE_HOST" desc:"injected by Kubernetes for a Service named tasks-service; used when TASKS_ADDRESS is unset"`
	TasksServicePort string `envconfig:"TASKS_SERVICE_SERVICE_PORT" desc:"injected by Kubernetes with TASKS_SERVICE_SERVICE_HOST (8000 when absent)"`

	APIMode        string        `envconfig:"FRONTEND_API_MODE" default:"proxy" desc:"proxy: the page calls /api/ here, forwarded to users and tasks; direct: the page calls USERS_PUBLIC_URL and TASKS_PUBLIC_URL itself (CORS)"`
	UsersPublicURL string        `envconfig:"USERS_PUBLIC_URL" desc:"direct mode: users' URL as the browser reaches it; empty: users through /api/ here"`
	TasksPublicURL string        `envconfig:"TASKS_PUBLIC_URL" desc:"direct mode: tasks' URL as the browser reaches it, e.g. http://localhost:8000"`
	Timeout        time.Duration `envconfig:"UPSTREAM_TIMEOUT" default:"10s" desc:"longest wait for users' or tasks' answer before a 504"`
	IdleTimeout    time.Duration `envconfig:"UPSTREAM_IDLE_TIMEOUT" default:"5s" desc:"how long an idle connection to users or tasks is kept; short, so a re-created Service is found again by name"`
	chainview.Settings
	service.Common
}

func (c *config) ListenPort() int { return c.Port }

func (c *config) users() (discovery.Found, error) {
	return discovery.Env{Prefix: "USERS", Address: c.UsersAddress, ServiceHost: c.UsersServiceHost, ServicePort: c.UsersServicePort}.Find("8080")
}

func (c *config) tasks() (discovery.Found, error) {
	return discovery.Env{Prefix: "TASKS", Address: c.TasksAddress, ServiceHost: c.TasksServiceHost, ServicePort: c.TasksServicePort}.Find("8000")
}

func (c *config) Validate() error {
	if c.Timeout <= 0 || c.IdleTimeout <= 0 {
		return fmt.Errorf("UPSTREAM_TIMEOUT=%s and UPSTREAM_IDLE_TIMEOUT=%s must be positive", c.Timeout, c.IdleTimeout)
	}
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	if _, err := c.page(); err != nil {
		return err
	}
	if _, err := c.users(); err != nil {
		return err
	}
	_, err := c.tasks()
	return err
}

// page is what the page's script is told: where to send users' and tasks' calls.
func (c *config) page() (ui.Config, error) {
	proxied := ui.Config{Mode: ui.ModeProxy, UsersURL: "/api", TasksURL: "/api"}
	switch c.APIMode {
	case ui.ModeProxy:
		return proxied, nil
	case ui.ModeDirect:
		if c.TasksPublicURL == "" {
			return ui.Config{}, fmt.Errorf("FRONTEND_API_MODE=direct needs TASKS_PUBLIC_URL: tasks' URL as the browser reaches it (e.g. http://localhost:8000)")
		}
		page := ui.Config{Mode: ui.ModeDirect, UsersURL: proxied.UsersURL}
		var err error
		if c.UsersPublicURL != "" {
			if page.UsersURL, err = publicURL("USERS_PUBLIC_URL", c.UsersPublicURL); err != nil {
				return ui.Config{}, err
			}
		}
		page.TasksURL, err = publicURL("TASKS_PUBLIC_URL", c.TasksPublicURL)
		return page, err
	}
	return ui.Config{}, fmt.Errorf("FRONTEND_API_MODE=%q: want proxy or direct", c.APIMode)
}

// publicURL checks a URL the browser is to call and returns it without a trailing slash.
func publicURL(name, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s=%q: want an http or https URL such as http://localhost:8000", name, raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}
