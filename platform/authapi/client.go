package authapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/platform/retry"
)

var (
	// ErrUnavailable means auth could not be reached or did not answer in time, or failed:
	// callers answer 503, never 401 or 500.
	ErrUnavailable = errors.New("auth service unavailable")
	// ErrRejected means auth refused: wrong password, or a token that is not valid.
	ErrRejected = errors.New("rejected by auth")
	// ErrKeyRefused means auth refused this service's AUTH_API_KEY: a configuration error
	// that users of the service see as an outage (it is an ErrUnavailable too).
	ErrKeyRefused = fmt.Errorf("%w: auth refused this service's AUTH_API_KEY (it must be the same in auth, users and tasks)", ErrUnavailable)
	// ErrBusy means auth is shedding load (its password hashing is at capacity): callers
	// answer 503 with Retry-After, and need not log it as a failure (it is an ErrUnavailable).
	ErrBusy = fmt.Errorf("%w: auth is at capacity", ErrUnavailable)
)

// jsonContentType is the Content-Type of every call (shared: header values are never changed
// in place).
var jsonContentType = []string{"application/json"}

// recycleEvery is how long a connection to auth is kept for further calls, so that new ones
// are opened and spread over auth's replicas (a Kubernetes Service balances connections,
// not requests: without this, a new auth pod would get no traffic from a busy caller).
const recycleEvery = 5 * time.Second

// Client calls the auth service.
type Client struct {
	baseURL string
	urls    map[string]*url.URL // of each path, parsed once
	apiKey  []string            // the Authorization header's value, shared
	conns   *conns              // to urls' host; a redirect is answered as it is, never followed
	timeout time.Duration
	observe Observer

	answered atomic.Bool // auth has answered a call once
}

// Observer is told of every call: its route, how long it took, and its outcome: "ok",
// "rejected" (a wrong password, a token not valid), "unavailable" (auth unreachable, slow,
// failing, or refusing this service's key) or "error" (a request auth will never accept).
type Observer func(call string, took time.Duration, outcome string)

// outcome names how a call ended, for an Observer.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// Config configures a Client.
type Config struct {
	// URL is auth's base URL, e.g. http://auth:80.
	URL string
	// APIKey is the service credential auth requires of its callers (AUTH_API_KEY).
	APIKey string
	// Timeout bounds every call, so a hung auth costs a caller at most that long.
	Timeout time.Duration
	// Observe, if set, is told of every call.
	Observe Observer
}

// NewClient returns a client for the auth service. The request id in a call's context is
// sent along as X-Request-ID.
func NewClient(cfg Config) *Client {
	c := &Client{baseURL: cfg.URL, urls: make(map[string]*url.URL), timeout: cfg.Timeout, observe: cfg.Observe}
	// A URL that does not parse, or not as http://host:port, fails each call with
	// ErrUnavailable, as it always did.
	for _, path := range []string{PathHashPassword, PathIssueToken, PathVerifyToken} {
		if u, err := url.Parse(cfg.URL + path); err == nil && u.Scheme == "http" && u.Host != "" {
			c.urls[path] = u
		}
	}
	if u := c.urls[PathVerifyToken]; u != nil { // the three share their host
		c.conns = newConns(u.Host)
	}
	if cfg.APIKey != "" {
		c.apiKey = []string{"Bearer " + cfg.APIKey}
	}
	if c.observe == nil {
		c.observe = func(string, time.Duration, string) {}
	}
	return c
}

// Ping checks that auth answers and accepts this service's API key: it asks auth to verify
// an empty token, which auth refuses at once.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.VerifyToken(ctx, ""); err != nil && !errors.Is(err, ErrRejected) {
		return err
	}
	return nil
}

// Answered reports whether auth has answered one call of this client with its API key
// accepted: until then, a caller cannot serve anything that needs auth.
func (c *Client) Answered() bool { return c.answered.Load() }

// HashPassword returns a bcrypt hash of password.
func (c *Client) HashPassword(ctx context.Context, password string) (string, error) {
	var resp HashResponse
	err := c.post(ctx, PathHashPassword, HashRequest{Password: password}, &resp)
	return resp.HashedPassword, err
}

// IssueToken returns a token for uid when password matches hashedPassword, else ErrRejected.
func (c *Client) IssueToken(ctx context.Context, password, hashedPassword, uid string) (string, error) {
	var resp TokenResponse
	err := c.post(ctx, PathIssueToken, TokenRequest{Password: password, HashedPassword: hashedPassword, UID: uid}, &resp)
	return resp.Token, err
}

// VerifyToken returns the user id a valid token was issued to, else ErrRejected.
func (c *Client) VerifyToken(ctx context.Context, token string) (string, error) {
	var resp VerifyResponse
	err := c.post(ctx, PathVerifyToken, VerifyRequest{Token: token}, &resp)
	return resp.UID, err
}

// encode is body's JSON.
func encode(body any) ([]byte, error) {
	if v, ok := body.(VerifyRequest); ok {
		if payload, ok := encodeVerifyRequest(v.Token); ok {
			return payload, nil
		}
	}
	return json.Marshal(body)
}

func (c *Client) post(ctx context.Context, path string, body, into any) (err error) {
	start := time.Now()
	defer func() { c.observe(path, time.Since(start), outcome(err)) }()
	payload, err := encode(body)
	if err != nil {
		return err
	}
	target := c.urls[path]
	if target == nil {
		return fmt.Errorf("%w: %q is not a URL", ErrUnavailable, c.baseURL+path)
	}
	header := http.Header{"Content-Type": jsonContentType}
	if c.apiKey != nil {
		header["Authorization"] = c.apiKey
	}
	if id := requestid.From(ctx); id != "" {
		header[requestid.Header] = []string{id}
	}
	// The whole call, answer read included, within the timeout, whether or not the caller
	// stays: a call of at most that long need not follow its caller.
	resp, respBody, err := c.conns.call(target, header, payload, start.Add(c.timeout))
	if err != nil {
		// The error names only the URL, which carries no secret.
		return fmt.Errorf("%w: POST %s: %w", ErrUnavailable, target, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "":
		// auth asks this service to authenticate itself: the API key is missing or wrong.
		return ErrKeyRefused
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return ErrBusy
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s answered %s", ErrUnavailable, path, resp.Status)
	case !fromAuth(resp):
		// Something at auth's address that is not auth's API: a proxy, another service, a
		// Service whose endpoints are not programmed yet. Not an answer from auth.
		return fmt.Errorf("%w: %s answered %s, not as auth answers", ErrUnavailable, path, resp.Status)
	}
	c.answered.Store(true)
	switch {
	case resp.StatusCode == http.StatusOK:
		if v, ok := into.(*VerifyResponse); ok && parseVerified(respBody, v) {
			return nil
		}
		if err := json.Unmarshal(respBody, into); err != nil {
			return fmt.Errorf("%w: %s answered unreadable JSON: %w", ErrUnavailable, path, err)
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return ErrRejected
	case path == PathVerifyToken:
		// A token auth refuses for its shape (too large, not JSON-safe…) is as invalid as one
		// with a bad signature.
		return fmt.Errorf("%w: %s answered %s", ErrRejected, path, resp.Status)
	default:
		// A 4xx other than 401 means this client sent something auth will never accept:
		// a bug on our side, not an outage.
		return fmt.Errorf("auth %s answered %s: %s", path, resp.Status, bytes.TrimSpace(respBody))
	}
}

// maxAnswerBytes bounds what is read of an answer of auth.
const maxAnswerBytes = 64 << 10

// readBody reads resp's body whole, up to maxAnswerBytes: in one read of its announced length
// when it has one (every answer of auth does).
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxAnswerBytes {
		body := make([]byte, n)
		_, err := io.ReadFull(resp.Body, body)
		return body, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
}

// fromAuth reports whether resp reads as one of auth's own answers below 500: JSON, with one
// of the statuses its API uses.
func fromAuth(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")
	}
	return false
}

// WaitAnswered pings auth every retryEvery until it answers with this service's key accepted
// (then Answered is true), or ctx ends. It logs each different reason it keeps trying.
func (c *Client) WaitAnswered(ctx context.Context, log *slog.Logger, retryEvery time.Duration) {
	answered := retry.Until(ctx, log, retryEvery, "not ready yet: retrying until auth answers", func(ctx context.Context) error {
		if c.Answered() { // a request got there first
			return nil
		}
		return c.Ping(ctx)
	})
	if answered {
		log.Info("auth answered: ready")
	}
}
