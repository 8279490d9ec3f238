package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Peer is another service this one calls, and how it was found.
type Peer struct {
	Name    string // e.g. "auth"
	Service string // the Kubernetes Service the course names for it, e.g. "auth-service"
	Found   Found
}

// View is what the discovery page shows: how this service found each peer and what that
// resolves to now, the resolver's settings, the service-link variables the kubelet injected,
// and warnings for the mistakes learners make with them.
type View struct {
	Service          string            `json:"service"`
	Peers            []PeerView        `json:"peers"`
	Resolver         Resolver          `json:"resolver"`
	ServiceVariables map[string]string `json:"serviceVariables"`
	Warnings         []string          `json:"warnings"`
}

// PeerView is one peer as found and as resolved now.
type PeerView struct {
	Name       string            `json:"name"`
	URL        string            `json:"url"`
	Source     string            `json:"source"`
	Variables  map[string]string `json:"variables"` // the source variables and their values
	Host       string            `json:"host"`
	ResolvesTo []string          `json:"resolvesTo,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// Resolver is what /etc/resolv.conf says: which suffixes a short name is tried with.
type Resolver struct {
	Search      []string `json:"search"`
	Nameservers []string `json:"nameservers"`
	Options     []string `json:"options"`
}

// Inputs of Look, from the process unless a test gives its own.
type Inputs struct {
	Environ    []string // NAME=value
	ResolvConf string   // the text of /etc/resolv.conf
	Settings   []string // the variables this service reads
	Lookup     func(ctx context.Context, host string) ([]string, error)
}

// ProcessInputs are environ (the process's environment, as os.Environ gives it, read once by
// its main and passed down) with this process's resolver and DNS.
func ProcessInputs(environ, settings []string) Inputs {
	conf, _ := os.ReadFile("/etc/resolv.conf")
	return Inputs{Environ: environ, ResolvConf: string(conf), Settings: settings, Lookup: net.DefaultResolver.LookupHost}
}

// injected matches a variable the kubelet injects for a Service, and its name.
var (
	serviceHost  = regexp.MustCompile(`^([A-Z0-9_]+)_SERVICE_HOST$`)
	injectedPort = regexp.MustCompile(`^(tcp|udp|sctp)://[0-9a-fA-F.:\[\]]+:[0-9]+$`)
)

// Look builds the view of service with peers.
func Look(ctx context.Context, service string, peers []Peer, in Inputs) View {
	env := map[string]string{}
	for _, kv := range in.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	v := View{Service: service, Resolver: parseResolvConf(in.ResolvConf), ServiceVariables: map[string]string{}, Warnings: []string{}}
	for k, val := range env {
		if strings.Contains(k, "_SERVICE_") || (strings.HasSuffix(k, "_PORT") && injectedPort.MatchString(val)) {
			v.ServiceVariables[k] = val
		}
	}
	for _, p := range peers {
		v.Peers = append(v.Peers, lookPeer(ctx, p, env, in.Lookup))
	}
	v.Warnings = append(v.Warnings, nearMisses(env, in.Settings)...)
	v.Warnings = append(v.Warnings, collisions(env, in.Settings)...)
	inCluster := env["KUBERNETES_SERVICE_HOST"] != ""
	for i, p := range peers {
		if inCluster {
			v.Warnings = append(v.Warnings, missingVariables(ctx, p, env, in.Lookup)...)
		}
		v.Warnings = append(v.Warnings, otherServicesAddress(p, v.Peers[i], env)...)
	}
	slices.Sort(v.Warnings)
	return v
}

func lookPeer(ctx context.Context, p Peer, env map[string]string, lookup func(context.Context, string) ([]string, error)) PeerView {
	pv := PeerView{Name: p.Name, URL: p.Found.URL, Source: p.Found.Source, Variables: map[string]string{}}
	for _, name := range strings.Split(p.Found.Source, " and ") {
		if val, ok := env[name]; ok {
			pv.Variables[name] = val
		}
	}
	u, err := url.Parse(p.Found.URL)
	if err != nil {
		pv.Error = err.Error()
		return pv
	}
	pv.Host = u.Hostname()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if addrs, err := lookup(ctx, pv.Host); err != nil {
		pv.Error = err.Error()
	} else {
		pv.ResolvesTo = addrs
	}
	return pv
}

// nearMisses: a variable nobody reads, one or two letters away from one this service reads
// (AUTH_SERVICE_SERIVCE_HOST), or from the pair the kubelet injects.
func nearMisses(env map[string]string, settings []string) []string {
	known := map[string]bool{}
	for _, s := range settings {
		known[s] = true
	}
	var warnings []string
	for name := range env {
		if known[name] || len(name) < 6 {
			continue
		}
		for _, s := range settings {
			if d := distance(name, s); d > 0 && d <= 2 {
				warnings = append(warnings, fmt.Sprintf("%s is set, but nothing here reads it: did you mean %s?", name, s))
				break
			}
		}
	}
	return warnings
}

// collisions: a setting of this service whose value is what the kubelet injects as
// <NAME>_PORT for a Service named NAME (tcp://10.96.0.12:80): a Service named after a
// setting (a Service "metrics" sets METRICS_PORT in every pod started after it).
func collisions(env map[string]string, settings []string) []string {
	var warnings []string
	for _, s := range settings {
		if val := env[s]; injectedPort.MatchString(val) {
			service := strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(s, "_PORT"), "_", "-"))
			warnings = append(warnings, fmt.Sprintf("%s=%s looks injected by Kubernetes for a Service named %q: it collides with this service's setting %s (set %s yourself, or rename the Service)", s, val, service, s, s))
		}
	}
	return warnings
}

// missingVariables: the peer's Service exists (its name resolves) but the kubelet injected
// no variables for it: the Service was created after this pod started.
func missingVariables(ctx context.Context, p Peer, env map[string]string, lookup func(context.Context, string) ([]string, error)) []string {
	if p.Service == "" {
		return nil
	}
	prefix := strings.ToUpper(strings.ReplaceAll(p.Service, "-", "_"))
	if _, ok := env[prefix+"_SERVICE_HOST"]; ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := lookup(ctx, p.Service)
	if err != nil || len(addrs) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the Service %s exists (it resolves to %s) but this pod has no %s_SERVICE_HOST: the kubelet injects a Service's variables only into pods started after it; restart this pod, or find %s by DNS (%s)",
		p.Service, strings.Join(addrs, ", "), prefix, p.Name, p.Service+".default")}
}

// otherServicesAddress: the peer was found at an address that is another Service's cluster
// IP (AUTH_ADDRESS set from USERS_SERVICE_SERVICE_HOST).
func otherServicesAddress(p Peer, pv PeerView, env map[string]string) []string {
	var warnings []string
	for k, val := range env {
		m := serviceHost.FindStringSubmatch(k)
		if m == nil || val != pv.Host || p.Service == "" {
			continue
		}
		if own := strings.ToUpper(strings.ReplaceAll(p.Service, "-", "_")); m[1] != own {
			warnings = append(warnings, fmt.Sprintf("%s is found at %s, which is %s (the cluster IP of another Service), not %s_SERVICE_HOST", p.Name, val, k, own))
		}
	}
	return warnings
}

func parseResolvConf(text string) Resolver {
	r := Resolver{Search: []string{}, Nameservers: []string{}, Options: []string{}}
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "search", "domain":
			r.Search = append(r.Search, fields[1:]...)
		case "nameserver":
			r.Nameservers = append(r.Nameservers, fields[1])
		case "options":
			r.Options = append(r.Options, fields[1:]...)
		}
	}
	return r
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Handler serves the view, looked at anew on each request, as indented JSON.
func Handler(service string, peers []Peer, inputs func() Inputs) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := json.MarshalIndent(Look(r.Context(), service, peers, inputs()), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(append(body, '\n'))
	})
}
