package discovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// fakeDNS resolves the names it holds.
func fakeDNS(names map[string][]string) func(context.Context, string) ([]string, error) {
	return func(_ context.Context, host string) ([]string, error) {
		if addrs, ok := names[host]; ok {
			return addrs, nil
		}
		return nil, errors.New("no such host")
	}
}

var tasksSettings = []string{"PORT", "METRICS_PORT", "TASKS_FOLDER", "AUTH_ADDRESS", "AUTH_SERVICE_SERVICE_HOST", "AUTH_SERVICE_SERVICE_PORT"}

const clusterResolvConf = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"

func look(env []string, dns map[string][]string) View {
	auth, _ := AuthEnv{}.AuthURL()
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "AUTH_ADDRESS" {
			auth, _ = AuthEnv{Address: v}.AuthURL()
		}
	}
	return Look(context.Background(), "tasks", []Peer{{Name: "auth", Service: "auth-service", Found: auth}},
		Inputs{Environ: env, ResolvConf: clusterResolvConf, Settings: tasksSettings, Lookup: fakeDNS(dns)})
}

func hasWarning(v View, parts ...string) bool {
	return slices.ContainsFunc(v.Warnings, func(w string) bool {
		for _, p := range parts {
			if !strings.Contains(w, p) {
				return false
			}
		}
		return true
	})
}

func TestTheViewShowsHowAuthWasFound(t *testing.T) {
	v := look([]string{"AUTH_ADDRESS=auth-service.default", "KUBERNETES_SERVICE_HOST=10.96.0.1",
		"AUTH_SERVICE_SERVICE_HOST=10.96.4.4", "AUTH_SERVICE_SERVICE_PORT=80", "AUTH_SERVICE_PORT=tcp://10.96.4.4:80"},
		map[string][]string{"auth-service.default": {"10.96.4.4"}})
	p := v.Peers[0]
	if p.Source != "AUTH_ADDRESS" || p.Variables["AUTH_ADDRESS"] != "auth-service.default" || p.Host != "auth-service.default" || !slices.Equal(p.ResolvesTo, []string{"10.96.4.4"}) {
		t.Errorf("peer %+v", p)
	}
	if !slices.Equal(v.Resolver.Search, []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"}) || v.Resolver.Nameservers[0] != "10.96.0.10" {
		t.Errorf("resolver %+v", v.Resolver)
	}
	if len(v.ServiceVariables) != 4 {
		t.Errorf("service variables %v, want the four injected", v.ServiceVariables)
	}
	if len(v.Warnings) != 0 {
		t.Errorf("warnings for a correct setup: %v", v.Warnings)
	}
}

func TestTheViewWarnsOfLearnersMistakes(t *testing.T) {
	dns := map[string][]string{"auth-service": {"10.96.4.4"}, "10.96.7.7": {"10.96.7.7"}}
	if v := look([]string{"AUTH_SERVICE_SERIVCE_HOST=10.96.4.4", "AUTH_ADDRESS=10.96.7.7"}, dns); !hasWarning(v, "AUTH_SERVICE_SERIVCE_HOST", "did you mean AUTH_SERVICE_SERVICE_HOST") {
		t.Errorf("a mistyped variable: %v", v.Warnings)
	}
	if v := look([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", "AUTH_ADDRESS=auth-service"}, dns); !hasWarning(v, "Service auth-service exists", "no AUTH_SERVICE_SERVICE_HOST", "restart this pod") {
		t.Errorf("a Service created after the pod: %v", v.Warnings)
	}
	if v := look([]string{"AUTH_ADDRESS=10.96.7.7", "USERS_SERVICE_SERVICE_HOST=10.96.7.7"}, dns); !hasWarning(v, "USERS_SERVICE_SERVICE_HOST", "another Service") {
		t.Errorf("another Service's address: %v", v.Warnings)
	}
	if v := look([]string{"AUTH_ADDRESS=10.96.7.7", "TASKS_FOLDER=tcp://10.96.9.9:80"}, dns); !hasWarning(v, "TASKS_FOLDER=tcp://10.96.9.9:80", `Service named "tasks-folder"`) {
		t.Errorf("an injected variable on a setting: %v", v.Warnings)
	}
}
