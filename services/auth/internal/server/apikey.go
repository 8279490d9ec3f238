package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kub-demo/kub-demo/platform/web"
)

// requireAPIKey lets through only requests whose Authorization header is "Bearer <key>".
// Others get 401 with a WWW-Authenticate header, which tells a caller that it is the caller,
// not the password or token it sent, that was refused; why is logged once per caller (see
// refusalLog). An empty key lets everything through.
func requireAPIKey(log *slog.Logger, key string) func(http.Handler) http.Handler {
	// Digests of equal length, compared in constant time: neither the key's length nor how
	// much of it a guess got right shows in the time of the answer.
	want := sha256.Sum256([]byte(key))
	refusals := newRefusalLog(log, refusalLogEvery) // one for all routes: a caller is logged once
	return func(next http.Handler) http.Handler {
		if key == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			header := r.Header.Get("Authorization")
			presented, bearer := strings.CutPrefix(header, "Bearer ")
			got := sha256.Sum256([]byte(presented))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !bearer {
				refusals.refused(r, refusalReason(header, bearer))
				w.Header().Set("WWW-Authenticate", `Bearer realm="kub-demo-auth"`)
				web.Respond(w, http.StatusUnauthorized, web.MessageBody{
					Message: "This service is only for callers with the service credential (AUTH_API_KEY)."})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// refusalReason says what was wrong with a refused Authorization header, never what it held.
func refusalReason(header string, bearer bool) string {
	switch {
	case header == "":
		return "no Authorization header: the caller has no AUTH_API_KEY set"
	case !bearer:
		return "the Authorization header is not Bearer <AUTH_API_KEY>"
	}
	return "its AUTH_API_KEY differs from auth's: set the same value in auth, users and tasks"
}

// refusalLogEvery is how often a caller still refused is logged again: a log read later (or
// rotated) still shows it, and a caller refused on every request costs one line an hour.
const refusalLogEvery = time.Hour

// maxRefusedCallers bounds the callers remembered: past it, strangers at many addresses are
// not logged (their 401s are still counted in http_requests_total).
const maxRefusedCallers = 1024

// refusalLog logs why auth refused a caller's key once per caller address (its IP, whatever
// the port of the connection) and every period: a user or tasks pod with the wrong
// AUTH_API_KEY shows up in auth's log as one line that says why, not one line per request.
type refusalLog struct {
	log    *slog.Logger
	every  time.Duration
	mu     sync.Mutex
	logged map[string]time.Time // caller's address → when its refusal was last logged
}

func newRefusalLog(log *slog.Logger, every time.Duration) *refusalLog {
	return &refusalLog{log: log, every: every, logged: make(map[string]time.Time)}
}

func (l *refusalLog) refused(r *http.Request, reason string) {
	caller, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		caller = r.RemoteAddr
	}
	now := time.Now()
	l.mu.Lock()
	last, seen := l.logged[caller]
	if seen && now.Sub(last) < l.every {
		l.mu.Unlock()
		return
	}
	if !seen && len(l.logged) >= maxRefusedCallers {
		for c, at := range l.logged {
			if now.Sub(at) >= l.every {
				delete(l.logged, c)
			}
		}
		if len(l.logged) >= maxRefusedCallers {
			l.mu.Unlock()
			return
		}
	}
	l.logged[caller] = now
	l.mu.Unlock()
	l.log.WarnContext(r.Context(), "caller refused: its service credential is not auth's AUTH_API_KEY",
		"caller", caller, "reason", reason, "path", r.URL.Path)
}
