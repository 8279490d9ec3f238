// Package discovery finds the auth service the ways the course teaches: a host named in
// AUTH_ADDRESS (a compose service name, localhost in one pod, a ClusterIP, a DNS name), or
// the AUTH_SERVICE_SERVICE_HOST/PORT pair that kubelet injects for a Service named auth-service.
package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// AuthEnv holds the variables discovery reads; embed it in a service's config.
type AuthEnv struct {
	Address     string `envconfig:"AUTH_ADDRESS" desc:"auth's host or host:port (port 80 when absent); wins over the injected pair"`
	ServiceHost string `envconfig:"AUTH_SERVICE_SERVICE_HOST" desc:"injected by Kubernetes for a Service named auth-service; used when AUTH_ADDRESS is unset"`
	ServicePort string `envconfig:"AUTH_SERVICE_SERVICE_PORT" desc:"injected by Kubernetes with AUTH_SERVICE_SERVICE_HOST (80 when absent)"`
}

// Found is where auth is and which variables said so.
type Found struct {
	URL    string // base URL, e.g. http://auth-service.default:80
	Source string // the variables it came from
}

// ErrNotConfigured is returned when neither way of finding auth is set.
var ErrNotConfigured = errors.New("auth service address not configured: set AUTH_ADDRESS (host or host:port), " +
	"or AUTH_SERVICE_SERVICE_HOST and AUTH_SERVICE_SERVICE_PORT (which Kubernetes injects for a Service named auth-service)")

const defaultPort = "80"

// AuthURL resolves the auth base URL from env.
func (env AuthEnv) AuthURL() (Found, error) {
	if address := strings.TrimSpace(env.Address); address != "" {
		hostPort, err := parseAddress(address)
		if err != nil {
			return Found{}, fmt.Errorf("AUTH_ADDRESS=%q: %w", env.Address, err)
		}
		return Found{URL: "http://" + hostPort, Source: "AUTH_ADDRESS"}, nil
	}
	host := strings.TrimSpace(env.ServiceHost)
	if host == "" {
		return Found{}, ErrNotConfigured
	}
	port := strings.TrimSpace(env.ServicePort)
	if port == "" {
		port = defaultPort
	}
	if err := checkPort(port); err != nil {
		return Found{}, fmt.Errorf("AUTH_SERVICE_SERVICE_PORT=%q: %w", env.ServicePort, err)
	}
	return Found{
		URL:    "http://" + net.JoinHostPort(host, port),
		Source: "AUTH_SERVICE_SERVICE_HOST and AUTH_SERVICE_SERVICE_PORT",
	}, nil
}

// parseAddress accepts host, host:port, [ipv6]:port, a bare IPv6 address, and forgives an
// http:// prefix that people copy from a browser; it returns host:port.
func parseAddress(address string) (string, error) {
	if strings.Contains(address, "://") {
		u, err := url.Parse(address)
		if err != nil || u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return "", errors.New("want a host or host:port, like auth, localhost:8081 or auth-service.default")
		}
		address = u.Host
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		// No port given: the whole value is the host (an IPv6 address has colons of its own).
		host, port = strings.Trim(address, "[]"), defaultPort
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return "", errors.New("want a host or host:port, like auth, localhost:8081 or auth-service.default")
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}
