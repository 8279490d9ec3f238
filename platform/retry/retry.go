// Package retry tries a start-up step again until it works: reaching auth, migrating the
// database, creating the demo user.
package retry

import (
	"context"
	"log/slog"
	"time"
)

// Until calls try every interval until it returns nil or ctx ends, and reports whether it
// succeeded. Each different error is logged once, at warn, as msg with attrs: a service
// waiting a long time for a dependency writes a line per change, not one per try.
func Until(ctx context.Context, log *slog.Logger, interval time.Duration, msg string, try func(context.Context) error, attrs ...any) bool {
	last := ""
	for {
		err := try(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if err.Error() != last {
			last = err.Error()
			log.Warn(msg, append(attrs, "error", last, "retryEvery", interval.String())...)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
}
