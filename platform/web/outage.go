package web

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// outageRepeat is how often an outage that lasts is logged again.
const outageRepeat = 30 * time.Second

// Outage logs a dependency's outage (auth unreachable, say) when it begins, every
// outageRepeat while it lasts with how many requests it failed, and when it ends, instead of
// an error line per failed request: 21,568 lines in 24 s buried everything else.
type Outage struct {
	log  *slog.Logger
	what string
	down atomic.Bool

	mu       sync.Mutex
	since    time.Time
	logged   time.Time
	failures int // since logged
}

// NewOutage returns an Outage of what ("auth").
func NewOutage(log *slog.Logger, what string) *Outage { return &Outage{log: log, what: what} }

// Failed counts a request that failed for the outage, err its cause.
func (o *Outage) Failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.failures++
	switch {
	case !o.down.Load():
		o.down.Store(true)
		o.since, o.logged, o.failures = now, now, 0
		o.log.Error(o.what+" is unavailable: answering 503 until it is back", "error", err.Error())
	case now.Sub(o.logged) >= outageRepeat:
		o.log.Error(o.what+" is still unavailable", "since", o.since.UTC().Format(time.RFC3339), "failedRequests", o.failures, "error", err.Error())
		o.logged, o.failures = now, 0
	}
}

// Succeeded ends the outage, if there is one: a request got through.
func (o *Outage) Succeeded() {
	if !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down.Load() {
		o.down.Store(false)
		o.log.Info(o.what+" is available again", "after", time.Since(o.since).Round(time.Millisecond).String(), "failedRequests", o.failures)
	}
}
