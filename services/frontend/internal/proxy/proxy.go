// Package proxy forwards the browser's /api/ calls to users and tasks, as the course's nginx
// does with "location /api/ { proxy_pass http://tasks-service.default:8000/; }": the /api
// prefix is removed, and the upstream's answer is passed back as it is. When an upstream
// cannot be reached, the answer is a 502 whose JSON message names the hop and the cause.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/platform/web"
)

// Prefix is what the browser puts before every API path, and what the proxy removes.
const Prefix = "/api"

// MaxBodyBytes caps a request body passed upstream: users and tasks refuse more than 64 KiB
// themselves, so a larger body is only ever a waste of both hops.
const MaxBodyBytes = 1 << 20

// Upstream is one service the proxy forwards to.
type Upstream struct {
	Name string // users, tasks: the hop's name in messages
	URL  string // http://host:port, as discovery found it
}

// Options tune the transport to the upstreams.
type Options struct {
	// Timeout bounds the wait for an upstream's answer headers (users' login waits for a
	// bcrypt run in auth, and tasks waits for auth up to its AUTH_TIMEOUT).
	Timeout time.Duration
	// IdleTimeout is how long a kept-alive connection to an upstream may wait for reuse.
	// Short, so that a Service re-created with a new ClusterIP (or a pod that went away)
	// is found again by name within seconds, not kept behind an old connection.
	IdleTimeout time.Duration
	// Dial opens a connection to host:port. nil: a net.Dialer, which resolves the name
	// again for every connection (Go's resolver keeps no cache), unlike nginx's proxy_pass
	// with a literal host, which resolves once at start.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewTransport returns the transport to the upstreams: every new connection dials the
// upstream's name, never an address remembered from an earlier one.
func NewTransport(opts Options) *http.Transport {
	dial := opts.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       opts.IdleTimeout,
		ResponseHeaderTimeout: opts.Timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// New returns the handler that forwards to up through transport: the request's path
// without Prefix, its query, method, headers and body.
func New(log *slog.Logger, up Upstream, transport http.RoundTripper) (http.Handler, error) {
	target, err := url.Parse(up.URL)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("%s: %q is not a base URL", up.Name, up.URL)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// What nginx does with "proxy_pass http://…:8000/;" (the trailing slash): the
			// location's prefix is replaced by "/".
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, Prefix)
			pr.Out.URL.RawPath = ""
			pr.SetXForwarded()
			// The same request id in every service's log lines.
			pr.Out.Header.Set(requestid.Header, requestid.From(pr.In.Context()))
		},
		Transport: transport,
		ModifyResponse: func(resp *http.Response) error {
			// The upstream echoes the id this answer carries already (requestid.Middleware).
			resp.Header.Del(requestid.Header)
			return nil
		},
		ErrorHandler: errorHandler(log, up, target.Host),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		rp.ServeHTTP(w, r)
	}), nil
}

// errorHandler answers what the transport could not: the hop and the cause in words.
func errorHandler(log *slog.Logger, up Upstream, host string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			// The browser went away: nobody reads an answer, and it is no upstream's fault.
			return
		}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			web.Respond(w, http.StatusRequestEntityTooLarge, web.MessageBody{Message: fmt.Sprintf("The request body is larger than the frontend passes on (%d KiB).", MaxBodyBytes>>10)})
			return
		}
		status, cause := http.StatusBadGateway, Cause(err)
		if timedOut(err) {
			status = http.StatusGatewayTimeout
		}
		log.LogAttrs(r.Context(), slog.LevelWarn, "upstream failed", slog.String("upstream", up.Name),
			slog.String("host", host), slog.Int("status", status), slog.String("error", err.Error()))
		web.Respond(w, status, web.MessageBody{Message: fmt.Sprintf("The frontend could not reach %s (%s): %s", up.Name, host, cause)})
	}
}

// Cause says in a few words why a connection to an upstream failed.
func Cause(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens there: not started yet, or stopped)"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("the name %s is not known (no such Service, or a typo)", dnsErr.Name)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the name %s could not be looked up (%s)", dnsErr.Name, dnsErr.Err)
	case timedOut(err):
		return "no answer in time"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "the connection was reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	}
	return "the connection failed (" + err.Error() + ")"
}

func timedOut(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
