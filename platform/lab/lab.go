// Package lab holds the lab controls, for teaching failure: one pod of a service can be made
// slow, failing (with a status of the learner's choosing) or unready, and the learner watches
// the chain degrade, and the Service's endpoints shrink. They exist only where LAB_CONTROLS is
// true (the lessons and compose), never in deploy/k8s, and are set on the metrics port, never
// on the public one:
//
//	curl -X POST 'localhost:9090/lab?slow=2s'      every answer 2 s late
//	curl -X POST 'localhost:9090/lab?fail=503'     every answer a 503 that says why
//	curl -X POST 'localhost:9090/lab?unready=true' /readyz 503: the pod leaves its Service
//	curl -X POST 'localhost:9090/lab?reset=true'   back to normal
//	curl localhost:9090/lab                        what is set
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
)

// Controls are one process's lab controls.
type Controls struct {
	service string
	log     *slog.Logger

	mu    sync.Mutex
	state State
}

// State is what is set.
type State struct {
	Slow    time.Duration `json:"slow"`    // added to every answer of the public port
	Fail    int           `json:"fail"`    // 0, or the status every public answer gets
	Unready bool          `json:"unready"` // /readyz answers 503
}

// MaxSlow bounds slow: a lab is no way to hold connections for ever.
const MaxSlow = 30 * time.Second

// New returns the controls of service, all off.
func New(service string, log *slog.Logger) *Controls {
	return &Controls{service: service, log: log}
}

func (c *Controls) current() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Middleware applies slow and fail to the public port's answers; /healthz and /readyz are
// left alone (unready is the readiness check's).
func (c *Controls) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		s := c.current()
		if s.Slow > 0 {
			select {
			case <-time.After(s.Slow):
			case <-r.Context().Done():
				return
			}
		}
		if s.Fail != 0 {
			web.Respond(w, s.Fail, message(fmt.Sprintf("Lab control: this pod of %s was told to fail every request with %d (LAB_CONTROLS; reset it with POST /lab?reset=true on its metrics port).", c.service, s.Fail)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errUnready = errors.New("lab control: told to be unready (POST /lab?reset=true on the metrics port)")

// Ready is a readiness check: it fails while unready is set.
func (c *Controls) Ready(context.Context) error {
	if c.current().Unready {
		return errUnready
	}
	return nil
}

// Handler serves GET /lab (what is set) and POST /lab?slow=&fail=&unready=&reset= (set it).
func (c *Controls) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if err := c.set(r); err != nil {
				web.Respond(w, http.StatusBadRequest, message(err.Error()))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		s := c.current()
		json.NewEncoder(w).Encode(struct {
			Slow    string `json:"slow"`
			Fail    int    `json:"fail"`
			Unready bool   `json:"unready"`
		}{s.Slow.String(), s.Fail, s.Unready})
	})
}

// message is an answer of the API's shape: {"message": text}.
func message(text string) map[string]string { return map[string]string{"message": text} }

func (c *Controls) set(r *http.Request) error {
	q := r.URL.Query()
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.state
	if q.Get("reset") == "true" {
		next = State{}
	}
	if v := q.Get("slow"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxSlow {
			return fmt.Errorf("slow=%q: want a duration from 0s to %s", v, MaxSlow)
		}
		next.Slow = d
	}
	if v := q.Get("fail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && (n < 400 || n > 599)) {
			return fmt.Errorf("fail=%q: want a status from 400 to 599, or 0 to stop failing", v)
		}
		next.Fail = n
	}
	if v := q.Get("unready"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("unready=%q: want true or false", v)
		}
		next.Unready = b
	}
	c.state = next
	c.log.Warn("lab controls set", "slow", next.Slow.String(), "fail", next.Fail, "unready", next.Unready)
	return nil
}
