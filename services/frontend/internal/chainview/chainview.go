// Package chainview gathers the discovery view (package discovery) of every service in the
// chain the page calls: the frontend's own, and those of users, tasks and auth, each fetched
// from that service's metrics port, where GET /discovery lives. The views name the cluster's
// addresses and variables, so none is shown unless a setting asks for it, and no view is
// ever served on users', tasks' or auth's public ports: the frontend fetches them and serves
// them at GET /network/discovery, for the page /network.html.
//
// In deploy/k8s the NetworkPolicies let the frontend reach only users' and tasks' public
// ports, and no Service exposes a metrics port: there the views stay off (the lessons may
// open the edges). In compose every metrics port is on the project network, and
// LAB_CONTROLS=true (the teaching setting compose sets) turns the chain on.
package chainview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/platform/trail"
	"github.com/kub-demo/kub-demo/platform/web"
	"github.com/kub-demo/kub-demo/services/frontend/internal/proxy"
)

// Settings are the frontend's settings for the views; embed them in its config.
type Settings struct {
	Chain     bool   `envconfig:"DISCOVERY_CHAIN" default:"false" desc:"true: /network.html shows the discovery view of users, tasks and auth, fetched from DISCOVERY_CHAIN_PORT at the host each was found at (auth's host as tasks found it); for teaching, never on a public frontend (LAB_CONTROLS=true turns it on too)"`
	ChainPort int    `envconfig:"DISCOVERY_CHAIN_PORT" default:"9090" desc:"the metrics port of users, tasks and auth, where DISCOVERY_CHAIN fetches their GET /discovery"`
	UsersURL  string `envconfig:"USERS_DISCOVERY_URL" desc:"URL of users' GET /discovery on its metrics port (e.g. http://users:9090/discovery); set: /network.html shows it"`
	TasksURL  string `envconfig:"TASKS_DISCOVERY_URL" desc:"URL of tasks' GET /discovery on its metrics port (e.g. http://tasks:9090/discovery); set: /network.html shows it"`
	AuthURL   string `envconfig:"AUTH_DISCOVERY_URL" desc:"URL of auth's GET /discovery on its metrics port (e.g. http://auth:9090/discovery); set: /network.html shows it"`
}

// Validate checks the URLs and the port.
func (s Settings) Validate() error {
	for name, raw := range map[string]string{"USERS_DISCOVERY_URL": s.UsersURL, "TASKS_DISCOVERY_URL": s.TasksURL, "AUTH_DISCOVERY_URL": s.AuthURL} {
		if raw == "" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s=%q: want the URL of a GET /discovery, such as http://tasks:9090/discovery", name, raw)
		}
	}
	if s.ChainPort < 1 || s.ChainPort > 65535 {
		return fmt.Errorf("DISCOVERY_CHAIN_PORT=%d is not a port", s.ChainPort)
	}
	return nil
}

// Chain is what the views are gathered from: the settings, how the frontend found users and
// tasks, and its own view.
type Chain struct {
	Settings
	LabControls  bool            // LAB_CONTROLS: the teaching setting, which turns Chain on
	Users, Tasks discovery.Found // where the frontend sends /api/ calls
	// Own is the frontend's own view, and OwnPod its X-Served-By ("" with SERVED_BY=false).
	Own    func(context.Context) discovery.View
	OwnPod string
	// Client fetches the others' views; nil: one with a 2 s timeout.
	Client *http.Client
}

// Entry is one service's view, or why it is not shown.
type Entry struct {
	Service string          `json:"service"`
	From    string          `json:"from,omitempty"`    // "this process", or the URL fetched
	Setting string          `json:"setting,omitempty"` // the setting that said where
	Pod     string          `json:"pod,omitempty"`     // X-Served-By of the view's answer
	View    *discovery.View `json:"view,omitempty"`
	// Off says why the view is not shown, and which setting would show it.
	Off string `json:"off,omitempty"`
	// Error says why a view that was asked for could not be fetched.
	Error string `json:"error,omitempty"`
}

// Answer is GET /network/discovery: the chain's views in the order a request travels.
type Answer struct {
	Enabled bool    `json:"enabled"`
	Off     string  `json:"off,omitempty"` // when nothing is enabled: why, and what turns it on
	Views   []Entry `json:"views"`
}

// Off is what the page says when no setting asks for the views.
const Off = "Off. The discovery views name this cluster's addresses and variables, so the frontend shows them only when a setting asks: " +
	"DISCOVERY_CHAIN=true (or LAB_CONTROLS=true, the teaching setting compose and the lessons set) fetches each service's view from its metrics port (DISCOVERY_CHAIN_PORT, 9090); " +
	"USERS_DISCOVERY_URL, TASKS_DISCOVERY_URL and AUTH_DISCOVERY_URL name one each. " +
	"In deploy/k8s the NetworkPolicies let the frontend reach only users' and tasks' public ports: there, read a view with kubectl port-forward and curl localhost:9090/discovery."

func (c *Chain) enabled() bool {
	return c.Chain || c.LabControls || c.UsersURL != "" || c.TasksURL != "" || c.AuthURL != ""
}

// Look gathers the views: the frontend's, users' and tasks' at once, then auth's (whose
// host, unless AUTH_DISCOVERY_URL names it, is where tasks' view says tasks found auth).
func (c *Chain) Look(ctx context.Context) Answer {
	if !c.enabled() {
		return Answer{Off: Off, Views: []Entry{}}
	}
	own := c.Own(ctx)
	entries := []Entry{{Service: "frontend", From: "this process", Pod: c.OwnPod, View: &own}}
	users, tasks := make(chan Entry, 1), make(chan Entry, 1)
	go func() {
		users <- c.peer(ctx, "users", c.UsersURL, "USERS_DISCOVERY_URL", c.Users.URL, "the frontend found users")
	}()
	go func() {
		tasks <- c.peer(ctx, "tasks", c.TasksURL, "TASKS_DISCOVERY_URL", c.Tasks.URL, "the frontend found tasks")
	}()
	u, t := <-users, <-tasks
	authAt, how := "", ""
	for _, e := range []Entry{t, u} {
		if authAt == "" && e.View != nil {
			for _, p := range e.View.Peers {
				if p.Name == "auth" {
					authAt, how = p.URL, e.Service+" found auth"
				}
			}
		}
	}
	a := c.peer(ctx, "auth", c.AuthURL, "AUTH_DISCOVERY_URL", authAt, how)
	return Answer{Enabled: true, Views: append(entries, u, t, a)}
}

// peer fetches service's view: from explicit (its <SERVICE>_DISCOVERY_URL) when set, else
// with DISCOVERY_CHAIN from the metrics port at found's host (found as how says).
func (c *Chain) peer(ctx context.Context, service, explicit, setting, found, how string) Entry {
	e := Entry{Service: service, From: explicit, Setting: setting}
	if explicit == "" {
		if !c.Chain && !c.LabControls {
			e.Off = fmt.Sprintf("Off: set %s to the URL of %s's GET /discovery on its metrics port, or DISCOVERY_CHAIN=true.", setting, service)
			return e
		}
		u, err := url.Parse(found)
		if err != nil || u.Hostname() == "" {
			e.Error = fmt.Sprintf("Where %s is, is not known here (no view that found it could be read): set %s.", service, setting)
			return e
		}
		e.From = "http://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(c.ChainPort)) + "/discovery"
		e.Setting = "DISCOVERY_CHAIN: the host " + how + " at, port DISCOVERY_CHAIN_PORT"
		if !c.Chain {
			e.Setting = "LAB_CONTROLS (DISCOVERY_CHAIN): the host " + how + " at, port DISCOVERY_CHAIN_PORT"
		}
	}
	view, pod, err := c.fetch(ctx, e.From)
	if err != nil {
		e.Error = "The frontend " + err.Error()
		return e
	}
	if view.Service != service {
		e.Error = fmt.Sprintf("%s answered with %s's view, not %s's (on one machine every service has the same host, and its own metrics port): set %s.", e.From, view.Service, service, setting)
		return e
	}
	e.View, e.Pod = &view, pod
	return e
}

// maxViewBytes bounds a view: one is a few KiB, with every Service's variables.
const maxViewBytes = 1 << 20

// fetch returns the view at from and its X-Served-By, or an error that reads on from "The
// frontend ".
func (c *Chain) fetch(ctx context.Context, from string) (discovery.View, string, error) {
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	var v discovery.View
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
	if err != nil {
		return v, "", fmt.Errorf("could not ask %s, not a URL: %w", from, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		cause := proxy.Cause(err)
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			cause += " (a NetworkPolicy that drops packets looks like this, and so does a Service with no such port)"
		}
		return v, "", fmt.Errorf("could not fetch %s: %s", from, cause)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxViewBytes))
	if err != nil {
		return v, "", fmt.Errorf("could not read the answer of %s: %w", from, err)
	}
	if resp.StatusCode != http.StatusOK {
		return v, "", fmt.Errorf("asked %s and got %s, not a discovery view (is it the metrics port?)", from, resp.Status)
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Service == "" {
		return v, "", fmt.Errorf("asked %s and got something that is not a discovery view (is it the metrics port?)", from)
	}
	return v, resp.Header.Get(trail.ServedBy), nil
}

// Handler serves GET /network/discovery: the views, looked at anew on each request (and at
// most one look at a time: each one asks the DNS and three services).
func (c *Chain) Handler() http.Handler {
	var one sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		one.Lock()
		defer one.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		web.Respond(w, http.StatusOK, c.Look(r.Context()))
	})
}
