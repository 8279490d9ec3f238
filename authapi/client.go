package authapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kub-demo/kub-demo/platform/requestid"
	"github.com/kub-demo/kub-demo/platform/retry"
	"github.com/kub-demo/kub-demo/platform/trail"
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

// Outcomes of a call, as an Observer is told them.
const (
	OutcomeOK          = "ok"
	OutcomeCached      = "cached" // a token verified a moment ago: auth was not called
	OutcomeRejected    = "rejected"
	OutcomeUnavailable = "unavailable"
	OutcomeError       = "error"
)

// Observer is told of every call: its route, how long it took, and its outcome (one of the
// Outcome constants): "ok"; "cached"; "rejected" (a wrong password, a token not valid);
// "unavailable" (auth unreachable, slow, failing, or refusing this service's key); or
// "error" (a request auth will never accept).
type Observer func(call string, took time.Duration, outcome string)

// outcome names how a call ended, for an Observer.
func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrRejected):
		return OutcomeRejected
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	}
	return OutcomeError
}

// Config configures a Client.
type Config struct {
	// URL is auth's base URL, e.g. http://auth:80.
	URL string
	// APIKey is the service credential auth requires of its callers (AUTH_API_KEY).
	APIKey string
	// Timeout bounds every call, so a hung auth costs a caller at most that long.
	Timeout time.Duration
	// VerifyCache is how long a token auth verified is taken as valid without asking auth
	// again (never past the token's own expiry); 0 asks auth on every VerifyToken.
	VerifyCache time.Duration
	// VerifyCacheEntries bounds how many verified tokens are remembered at once.
	VerifyCacheEntries int
	// Observe, if set, is told of every call.
	Observe Observer
}

// renewEvery is how often the idle connections to auth are closed, so that new ones are
// opened and spread over auth's replicas: a Kubernetes Service balances connections, not
// requests, and without this a new auth pod would get no traffic from a busy caller.
const renewEvery = 5 * time.Second

// maxAnswerBytes bounds what is read of an answer of auth (its answers are under 1 KiB).
const maxAnswerBytes = 64 << 10

// Client calls the auth service over net/http's Transport: kept-alive connections, a call
// lost with a closed kept-alive connection sent again, and a connection that carries an
// answer nobody asked for closed rather than reused.
type Client struct {
	baseURL   string
	apiKey    string
	transport *http.Transport
	client    *http.Client // over transport; a redirect is answered as it is, never followed
	timeout   time.Duration
	observe   Observer
	cache     *verifiedCache // nil when VerifyCache is 0

	answered  atomic.Bool  // auth answered the last call with this service's key accepted
	lastRenew atomic.Int64 // unix nanoseconds
}

// NewClient returns a client for the auth service. The request id in a call's context is
// sent along as X-Request-ID.
func NewClient(cfg Config) *Client {
	transport := &http.Transport{
		Proxy:                  nil, // auth is inside the cluster: never through HTTP_PROXY
		DialContext:            (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    100,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: maxAnswerBytes,
		DisableCompression:     true,
	}
	c := &Client{
		baseURL:   strings.TrimSuffix(cfg.URL, "/"),
		apiKey:    cfg.APIKey,
		transport: transport,
		client:    &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout:   cfg.Timeout,
		observe:   cfg.Observe,
		cache:     newVerifiedCache(cfg.VerifyCache, cfg.VerifyCacheEntries),
	}
	if c.observe == nil {
		c.observe = func(string, time.Duration, string) {}
	}
	c.lastRenew.Store(time.Now().UnixNano())
	return c
}

// Ping checks that auth answers and accepts this service's API key: it asks auth to verify
// an empty token, which auth refuses at once.
func (c *Client) Ping(ctx context.Context) error {
	var resp VerifyResponse
	if _, err := c.post(ctx, PathVerifyToken, VerifyRequest{}, &resp); err != nil && !errors.Is(err, ErrRejected) {
		return err
	}
	return nil
}

// Answered reports whether auth answered this client's last call with its API key
// accepted: until it has, a caller cannot serve anything that needs auth, and once auth
// refuses the key, it cannot either.
func (c *Client) Answered() bool { return c.answered.Load() }

// Ready is a readiness check: nil when auth answered the last call with this service's key
// accepted, else the error of a Ping made now (which, when it passes, makes it so).
func (c *Client) Ready(ctx context.Context) error {
	if c.Answered() {
		return nil
	}
	return c.Ping(ctx)
}

// HashPassword returns a bcrypt hash of password.
func (c *Client) HashPassword(ctx context.Context, password string) (string, error) {
	var resp HashResponse
	if _, err := c.post(ctx, PathHashPassword, HashRequest{Password: password}, &resp); err != nil {
		return "", err
	}
	if resp.HashedPassword == "" {
		return "", fmt.Errorf("%w: %s answered 200 without a hashedPassword", ErrUnavailable, PathHashPassword)
	}
	return resp.HashedPassword, nil
}

// IssueToken returns a token for uid when password matches hashedPassword, else ErrRejected.
func (c *Client) IssueToken(ctx context.Context, password, hashedPassword, uid string) (string, error) {
	var resp TokenResponse
	if _, err := c.post(ctx, PathIssueToken, TokenRequest{Password: password, HashedPassword: hashedPassword, UID: uid}, &resp); err != nil {
		return "", err
	}
	if resp.Token == "" {
		return "", fmt.Errorf("%w: %s answered 200 without a token", ErrUnavailable, PathIssueToken)
	}
	return resp.Token, nil
}

// VerifyToken returns the user id a valid token was issued to, else ErrRejected. A token
// auth verified within the client's VerifyCache is taken as valid without asking again.
func (c *Client) VerifyToken(ctx context.Context, token string) (string, error) {
	if v, ok := c.cache.get(token); ok {
		c.observe(PathVerifyToken, 0, OutcomeCached)
		trail.Verified(ctx, trail.Verification{By: v.by, At: v.at, Cached: true})
		return v.uid, nil
	}
	var resp VerifyResponse
	by, err := c.post(ctx, PathVerifyToken, VerifyRequest{Token: token}, &resp)
	if err != nil {
		return "", err
	}
	if resp.UID == "" {
		// An answer that names nobody: storing a task under no owner would show it to all.
		return "", fmt.Errorf("%w: %s answered 200 without a uid", ErrUnavailable, PathVerifyToken)
	}
	if claimed, ok := tokenUID(token); ok && claimed != resp.UID {
		// An answer meant for another call (HTTP/1.1 cannot always tell an unasked answer on
		// a kept-alive connection from the next one): never take it as this token's user.
		return "", fmt.Errorf("%w: %s answered uid %q for a token issued to another", ErrUnavailable, PathVerifyToken, resp.UID)
	}
	c.cache.put(token, resp.UID, by)
	trail.Verified(ctx, trail.Verification{By: by, At: time.Now()})
	return resp.UID, nil
}

// replayable marks every call as safe to send again: if a kept-alive connection to auth
// turns out closed before any answer came (an auth pod stopping), the Transport sends the
// call again on a new connection instead of failing it. All three calls are: hashing gives
// another hash, issuing another token, verifying the same answer. An Idempotency-Key with no
// value marks a request so without sending the header (net/http's documented convention).
var replayable = []string(nil)

// post makes one call of path and decodes auth's answer into into. It returns the answer's
// X-Served-By: which auth pod answered.
func (c *Client) post(ctx context.Context, path string, body, into any) (servedBy string, err error) {
	start := time.Now()
	defer func() { c.observe(path, time.Since(start), outcome(err)) }()
	c.renewConnections(start)
	payload, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	// The whole call, answer read included, within the timeout; and no longer than the
	// caller waits for it.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, bytes.NewReader(payload))
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a URL: %w", ErrUnavailable, c.baseURL+path, err)
	}
	req.Header["Idempotency-Key"] = replayable
	req.Header.Set("Content-Type", "application/json")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if id := requestid.From(ctx); id != "" {
		req.Header.Set(requestid.Header, id)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// The error names only the URL, which carries no secret.
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", fmt.Errorf("%w: reading %s answer: %w", ErrUnavailable, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "":
		// auth asks this service to authenticate itself: the API key is missing or wrong.
		c.answered.Store(false)
		return "", ErrKeyRefused
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return "", ErrBusy
	case resp.StatusCode >= 500:
		return "", fmt.Errorf("%w: %s answered %s", ErrUnavailable, path, resp.Status)
	case !fromAuth(resp):
		// Something at auth's address that is not auth's API: a proxy, another service, a
		// Service whose endpoints are not programmed yet. Not an answer from auth.
		return "", fmt.Errorf("%w: %s answered %s, not as auth answers", ErrUnavailable, path, resp.Status)
	}
	c.answered.Store(true)
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(answer, into); err != nil {
			return "", fmt.Errorf("%w: %s answered unreadable JSON: %w", ErrUnavailable, path, err)
		}
		return resp.Header.Get(trail.ServedBy), nil
	case resp.StatusCode == http.StatusUnauthorized:
		return "", ErrRejected
	case path == PathVerifyToken:
		// A token auth refuses for its shape (too large, not JSON-safe…) is as invalid as one
		// with a bad signature.
		return "", fmt.Errorf("%w: %s answered %s", ErrRejected, path, resp.Status)
	default:
		// A 4xx other than 401 means this client sent something auth will never accept:
		// a bug on our side, not an outage.
		return "", fmt.Errorf("auth %s answered %s: %s", path, resp.Status, bytes.TrimSpace(answer))
	}
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

// renewConnections closes the idle connections to auth every renewEvery (see there).
func (c *Client) renewConnections(now time.Time) {
	last := c.lastRenew.Load()
	if now.UnixNano()-last < int64(renewEvery) || !c.lastRenew.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	c.transport.CloseIdleConnections()
}

// WaitAnswered pings auth every retryEvery until it answers with this service's key accepted
// (then Answered is true), or ctx ends. It logs each different reason it keeps trying.
func (c *Client) WaitAnswered(ctx context.Context, log *slog.Logger, retryEvery time.Duration) {
	if retry.Until(ctx, log, retryEvery, "not ready yet: retrying until auth answers", c.Ready) {
		log.Info("auth answered: ready")
	}
}
