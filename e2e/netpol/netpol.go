// Package netpol checks, from inside a cluster, that deploy/k8s's NetworkPolicies do what
// they say: short-lived probe pods in the role of each service (the same labels, so the same
// policies apply to them) and an outsider try every edge, and each result is classified and
// set against what the policies allow. A cluster whose network plugin does not enforce
// NetworkPolicy (minikube's default, kind before v0.24) lets everything through without an
// error: the verdict says so.
package netpol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"
)

// Result is how far one try got.
type Result struct {
	Edge    string `json:"edge"`
	Outcome string `json:"outcome"` // one of the Outcome constants, or "HTTP <status>"
	Detail  string `json:"detail,omitempty"`
}

// Outcomes of a try that got no HTTP answer.
const (
	DNSFailure = "DNS failure"
	TimedOut   = "timed out"
	Refused    = "refused"
	Failed     = "failed"
)

// Connected reports whether the try reached a server that answered.
func (r Result) Connected() bool {
	switch r.Outcome {
	case DNSFailure, TimedOut, Refused, Failed, "":
		return false
	}
	return true
}

// Try reaches rawURL with GET within timeout (twice, if the first try times out: a
// controller may drop a new pod's first packets until it knows the pod) and classifies
// what happened.
func Try(ctx context.Context, rawURL string, timeout time.Duration) Result {
	r := try(ctx, rawURL, timeout)
	if r.Outcome == TimedOut {
		r = try(ctx, rawURL, timeout)
	}
	return r
}

func try(ctx context.Context, rawURL string, timeout time.Duration) Result {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Result{Outcome: Failed, Detail: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := u.Hostname()
	if net.ParseIP(host) == nil {
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			return Result{Outcome: DNSFailure, Detail: err.Error()}
		}
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Result{Outcome: Refused, Detail: err.Error()}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return Result{Outcome: TimedOut, Detail: fmt.Sprintf("no answer to the connection within %s", timeout)}
	case err != nil:
		return Result{Outcome: Failed, Detail: err.Error()}
	}
	conn.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Result{Outcome: Failed, Detail: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Result{Outcome: Failed, Detail: "connected, then: " + err.Error()}
	}
	resp.Body.Close()
	return Result{Outcome: fmt.Sprintf("HTTP %d", resp.StatusCode)}
}
