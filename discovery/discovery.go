// Package discovery finds a service the ways the course teaches for auth: a host named in
// AUTH_ADDRESS (a compose service name, localhost in one pod, a ClusterIP, a DNS name), or
// the AUTH_SERVICE_SERVICE_HOST/PORT pair that kubelet injects for a Service named auth-service.
// The frontend finds users and tasks the same ways (Env, with USERS_ and TASKS_).
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

const authPort = "80"

// AuthURL resolves the auth base URL from env.
func (env AuthEnv) AuthURL() (Found, error) {
	found, err := Env{Prefix: "AUTH", Address: env.Address, ServiceHost: env.ServiceHost, ServicePort: env.ServicePort}.Find(authPort)
	if errors.Is(err, errNotConfigured) {
		return Found{}, ErrNotConfigured
	}
	return found, err
}

// Env is one service's discovery variables, read by the caller: <Prefix>_ADDRESS, and the
// <Prefix>_SERVICE_SERVICE_HOST/PORT pair that kubelet injects for a Service named
// <prefix>-service.
type Env struct {
	Prefix                            string // AUTH, USERS, TASKS
	Address, ServiceHost, ServicePort string
}

// errNotConfigured is what Find wraps when neither way is set.
var errNotConfigured = errors.New("address not configured")

// Find resolves the service's base URL from env, with port when none is given.
func (env Env) Find(port string) (Found, error) {
	name := strings.ToLower(env.Prefix)
	if address := strings.TrimSpace(env.Address); address != "" {
		hostPort, err := parseAddress(address, port, name)
		if err != nil {
			return Found{}, fmt.Errorf("%s_ADDRESS=%q: %w", env.Prefix, env.Address, err)
		}
		return Found{URL: "http://" + hostPort, Source: env.Prefix + "_ADDRESS"}, nil
	}
	host := strings.TrimSpace(env.ServiceHost)
	if host == "" {
		return Found{}, fmt.Errorf("%s service %w: set %s_ADDRESS (host or host:port), or %s_SERVICE_SERVICE_HOST and "+
			"%s_SERVICE_SERVICE_PORT (which Kubernetes injects for a Service named %s-service)",
			name, errNotConfigured, env.Prefix, env.Prefix, env.Prefix, name)
	}
	if p := strings.TrimSpace(env.ServicePort); p != "" {
		port = p
	}
	if err := checkPort(port); err != nil {
		return Found{}, fmt.Errorf("%s_SERVICE_SERVICE_PORT=%q: %w", env.Prefix, env.ServicePort, err)
	}
	return Found{
		URL:    "http://" + net.JoinHostPort(host, port),
		Source: env.Prefix + "_SERVICE_SERVICE_HOST and " + env.Prefix + "_SERVICE_SERVICE_PORT",
	}, nil
}

// parseAddress accepts host, host:port, [ipv6]:port, a bare IPv6 address, and forgives an
// http:// prefix that people copy from a browser; it returns host:port, with defaultPort when
// address has none. name is the service's, for the examples in the error.
func parseAddress(address, defaultPort, name string) (string, error) {
	wanted := fmt.Sprintf("want a host or host:port, like %s, localhost:8081 or %s-service.default", name, name)
	if strings.Contains(address, "://") {
		u, err := url.Parse(address)
		if err != nil || u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return "", errors.New(wanted)
		}
		address = u.Host
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		// No port given: the whole value is the host (an IPv6 address has colons of its own).
		host, port = strings.Trim(address, "[]"), defaultPort
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return "", errors.New(wanted)
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
