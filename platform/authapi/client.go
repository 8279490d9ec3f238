package authapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/kub-demo/kub-demo/platform/requestid"
)

var (
	// ErrUnavailable means auth could not be reached or did not answer in time, or failed:
	// callers answer 503, never 401 or 500.
	ErrUnavailable = errors.New("auth service unavailable")
	// ErrRejected means auth refused: wrong password, or a token that is not valid.
	ErrRejected = errors.New("rejected by auth")
)

// jsonContentType is the Content-Type of every call (shared: header values are never changed
// in place).
var jsonContentType = []string{"application/json"}

// Client calls the auth service.
type Client struct {
	baseURL   string
	transport http.RoundTripper
	timeout   time.Duration
	observe   Observer
}

// Observer is told of every call: its route, how long it took, and its error (nil when ok).
type Observer func(call string, took time.Duration, err error)

// NewClient returns a client for the auth service at baseURL (e.g. http://auth:80). Every
// call is bounded by timeout, so a hung auth costs a caller at most that long. observe may
// be nil. The request id in a call's context is sent along as X-Request-ID.
func NewClient(baseURL string, timeout time.Duration, observe Observer) *Client {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
	}
	if observe == nil {
		observe = func(string, time.Duration, error) {}
	}
	// The transport alone, not an http.Client: auth never redirects (following one would be a
	// bug), and the Client's redirect bookkeeping copied every request's headers and wrapped
	// its context, a tenth of what tasks allocated per GET /tasks (make bench profile).
	return &Client{baseURL: baseURL, transport: transport, timeout: timeout, observe: observe}
}

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

func (c *Client) post(ctx context.Context, path string, body, into any) (err error) {
	start := time.Now()
	defer func() { c.observe(path, time.Since(start), err) }()
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	// The whole call, answer read included, within the timeout.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header = http.Header{"Content-Type": jsonContentType}
	if id := requestid.From(ctx); id != "" {
		req.Header[requestid.Header] = []string{id}
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		// The error names only the URL, which carries no secret.
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: reading %s answer: %v", ErrUnavailable, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(respBody, into); err != nil {
			return fmt.Errorf("%w: %s answered unreadable JSON: %v", ErrUnavailable, path, err)
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return ErrRejected
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s answered %s", ErrUnavailable, path, resp.Status)
	default:
		// A 4xx other than 401 means this client sent something auth will never accept:
		// a bug on our side, not an outage.
		return fmt.Errorf("auth %s answered %s: %s", path, resp.Status, bytes.TrimSpace(respBody))
	}
}
