package discovery

import (
	"errors"
	"strings"
	"testing"
)

func TestAuthURL(t *testing.T) {
	tests := []struct {
		name       string
		env        AuthEnv
		wantURL    string
		wantSource string
	}{
		{"compose service name", AuthEnv{Address: "auth"}, "http://auth:80", "AUTH_ADDRESS"},
		{"localhost in one pod", AuthEnv{Address: "localhost"}, "http://localhost:80", "AUTH_ADDRESS"},
		{"cluster IP", AuthEnv{Address: "10.99.190.110"}, "http://10.99.190.110:80", "AUTH_ADDRESS"},
		{"cluster DNS", AuthEnv{Address: "auth-service.default"}, "http://auth-service.default:80", "AUTH_ADDRESS"},
		{"host and port", AuthEnv{Address: "127.0.0.1:8081"}, "http://127.0.0.1:8081", "AUTH_ADDRESS"},
		{"http prefix forgiven", AuthEnv{Address: "http://auth:9000/"}, "http://auth:9000", "AUTH_ADDRESS"},
		{"bare IPv6", AuthEnv{Address: "fd00::10"}, "http://[fd00::10]:80", "AUTH_ADDRESS"},
		{"bracketed IPv6 with port", AuthEnv{Address: "[::1]:8081"}, "http://[::1]:8081", "AUTH_ADDRESS"},
		{"address wins over injected pair", AuthEnv{Address: "auth", ServiceHost: "10.0.0.1", ServicePort: "80"}, "http://auth:80", "AUTH_ADDRESS"},
		{"injected pair", AuthEnv{ServiceHost: "10.99.190.110", ServicePort: "80"}, "http://10.99.190.110:80",
			"AUTH_SERVICE_SERVICE_HOST and AUTH_SERVICE_SERVICE_PORT"},
		{"injected IPv6 host", AuthEnv{ServiceHost: "fd00::1", ServicePort: "8080"}, "http://[fd00::1]:8080",
			"AUTH_SERVICE_SERVICE_HOST and AUTH_SERVICE_SERVICE_PORT"},
		{"injected host without port", AuthEnv{ServiceHost: "10.0.0.1"}, "http://10.0.0.1:80",
			"AUTH_SERVICE_SERVICE_HOST and AUTH_SERVICE_SERVICE_PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.env.AuthURL()
			if err != nil {
				t.Fatalf("AuthURL() error = %v", err)
			}
			if got.URL != tt.wantURL || got.Source != tt.wantSource {
				t.Errorf("AuthURL() = %+v, want URL %q from %q", got, tt.wantURL, tt.wantSource)
			}
		})
	}
}

func TestAuthURLNotConfiguredNamesBothWays(t *testing.T) {
	_, err := AuthEnv{ServicePort: "80"}.AuthURL()
	if !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("error = %v, want ErrNotConfigured", err)
	}
	for _, name := range []string{"AUTH_ADDRESS", "AUTH_SERVICE_SERVICE_HOST", "AUTH_SERVICE_SERVICE_PORT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestAuthURLRejectsNonsense(t *testing.T) {
	for _, env := range []AuthEnv{
		{Address: "auth:http"},
		{Address: "auth:0"},
		{Address: "auth:70000"},
		{Address: "https://auth"},
		{Address: "http://auth/verify"},
		{Address: "user@auth"},
		{ServiceHost: "10.0.0.1", ServicePort: "tcp://10.0.0.1:80"},
	} {
		if got, err := env.AuthURL(); err == nil {
			t.Errorf("AuthURL(%+v) = %+v, want an error", env, got)
		}
	}
}

// The frontend finds users and tasks the same ways, with their own variables and ports.
func TestFindOtherServices(t *testing.T) {
	for _, c := range []struct {
		env        Env
		port       string
		wantURL    string
		wantSource string
	}{
		{Env{Prefix: "TASKS", Address: "tasks-service.default"}, "8000", "http://tasks-service.default:8000", "TASKS_ADDRESS"},
		{Env{Prefix: "USERS", Address: "users:9080"}, "8080", "http://users:9080", "USERS_ADDRESS"},
		{Env{Prefix: "USERS", ServiceHost: "10.0.0.7"}, "8080", "http://10.0.0.7:8080", "USERS_SERVICE_SERVICE_HOST and USERS_SERVICE_SERVICE_PORT"},
		{Env{Prefix: "TASKS", ServiceHost: "10.0.0.8", ServicePort: "8001"}, "8000", "http://10.0.0.8:8001", "TASKS_SERVICE_SERVICE_HOST and TASKS_SERVICE_SERVICE_PORT"},
	} {
		got, err := c.env.Find(c.port)
		if err != nil || got.URL != c.wantURL || got.Source != c.wantSource {
			t.Errorf("%+v.Find(%s) = %+v, %v; want %s from %s", c.env, c.port, got, err, c.wantURL, c.wantSource)
		}
	}
	_, err := Env{Prefix: "TASKS"}.Find("8000")
	for _, want := range []string{"tasks service address not configured", "TASKS_ADDRESS", "TASKS_SERVICE_SERVICE_HOST", "Service named tasks-service"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if _, err := (Env{Prefix: "USERS", Address: "users/x"}).Find("8080"); err == nil || !strings.Contains(err.Error(), "USERS_ADDRESS") || !strings.Contains(err.Error(), "users-service.default") {
		t.Errorf("a bad USERS_ADDRESS: %v", err)
	}
}
