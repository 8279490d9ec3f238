package netpol

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// A Role is a probe pod: the labels it carries decide which policies apply to it.
type Role struct {
	Name   string
	Labels map[string]string
}

// The roles: users and tasks as their Deployments label their pods, and an outsider, a pod of
// the same namespace that is no part of kub-demo.
var (
	Users    = Role{"users", map[string]string{"app": "users", "app.kubernetes.io/part-of": "kub-demo"}}
	Tasks    = Role{"tasks", map[string]string{"app": "tasks", "app.kubernetes.io/part-of": "kub-demo"}}
	Outsider = Role{"outsider", map[string]string{"app": "kub-demo-netpol-outsider"}}
	Roles    = []Role{Users, Tasks, Outsider}
)

// A Target is something an edge tries to reach. URL may hold {auth-pod}, the IP of one auth
// pod, filled in at run time (the metrics port is on no Service).
type Target struct {
	Name, URL string
}

var (
	AuthAPI     = Target{"auth-service:80", "http://auth-service:80/healthz"}
	UsersAPI    = Target{"users-service:8080", "http://users-service:8080/healthz"}
	TasksAPI    = Target{"tasks-service:8000", "http://tasks-service:8000/healthz"}
	AuthMetrics = Target{"auth pod :9090 (metrics)", "http://{auth-pod}:9090/metrics"}
	Targets     = []Target{AuthAPI, UsersAPI, TasksAPI, AuthMetrics}
)

// Edge is a role trying a target, and whether deploy/k8s/network-policies.yaml allows it.
type Edge struct {
	From    Role
	To      Target
	Allowed bool
	Why     string // the policy that allows or denies it
}

// Name is how the probe and the matrix call the edge.
func (e Edge) Name() string { return e.From.Name + " -> " + e.To.Name }

// Edges is every role against every target, with what network-policies.yaml says of it.
func Edges() []Edge {
	var edges []Edge
	for _, from := range Roles {
		for _, to := range Targets {
			edges = append(edges, expect(from, to))
		}
	}
	return edges
}

func expect(from Role, to Target) Edge {
	e := Edge{From: from, To: to}
	client := from.Name == Users.Name || from.Name == Tasks.Name
	switch {
	case to == AuthAPI && client:
		e.Allowed, e.Why = true, "auth-ingress lets users and tasks in; auth-clients-egress lets them out to auth"
	case to == AuthAPI:
		e.Why = "auth-ingress: only users and tasks may call auth"
	case to == AuthMetrics:
		e.Why = "metrics-ingress: only the namespace monitoring may scrape"
	case client:
		e.Why = "auth-clients-egress and dns-egress: users and tasks may reach only auth and DNS"
	default:
		e.Allowed, e.Why = true, "public-ingress: users and tasks take anyone on their API port"
	}
	return e
}

// Verdicts.
const (
	Enforced    = "enforced"
	NotEnforced = "NOT ENFORCED by this cluster"
	Broken      = "BROKEN: an allowed edge does not connect"
)

// Report is the edges with their results.
type Report struct {
	Edges   []Edge
	Results map[string]Result // by Edge.Name
}

// Verdict is Enforced when every denied edge was blocked and every allowed one connected,
// NotEnforced when a denied edge connected (and every allowed one did), else Broken.
func (r Report) Verdict() string {
	leaked := false
	for _, e := range r.Edges {
		connected := r.Results[e.Name()].Connected()
		if e.Allowed && !connected {
			return Broken
		}
		leaked = leaked || (!e.Allowed && connected)
	}
	if leaked {
		return NotEnforced
	}
	return Enforced
}

// Problems lists what a run that expects enforcement (expectEnforced) must fail on: an
// allowed edge that did not connect, always; a denied edge that did, when enforcement is
// expected.
func (r Report) Problems(expectEnforced bool) []string {
	var problems []string
	for _, e := range r.Edges {
		res := r.Results[e.Name()]
		switch {
		case e.Allowed && !res.Connected():
			problems = append(problems, fmt.Sprintf("%s should connect (%s) but %s: %s", e.Name(), e.Why, res.Outcome, res.Detail))
		case !e.Allowed && res.Connected() && expectEnforced:
			problems = append(problems, fmt.Sprintf("%s should be blocked (%s) but got %s", e.Name(), e.Why, res.Outcome))
		}
	}
	return problems
}

// Write prints the matrix and the verdict.
func (r Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tPOLICY\tRESULT\tCHECK")
	for _, e := range r.Edges {
		res := r.Results[e.Name()]
		policy, mark := "deny", "ok"
		if e.Allowed {
			policy = "allow"
		}
		switch {
		case e.Allowed && !res.Connected():
			mark = "FAIL: should connect"
		case !e.Allowed && res.Connected():
			mark = "LEAK: not blocked"
		}
		outcome := res.Outcome
		if outcome == TimedOut {
			outcome += " (blocked)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.From.Name, e.To.Name, policy, outcome, mark)
	}
	tw.Flush()
	verdict := r.Verdict()
	fmt.Fprintf(w, "\nverdict: NetworkPolicy %s\n", verdict)
	if verdict == NotEnforced {
		fmt.Fprintln(w, strings.TrimSpace(`
This cluster's network plugin accepts NetworkPolicies but does not enforce them: nothing
fails, nothing is blocked. For a cluster that does: kind v0.24 or later (its default
kindnet enforces them), or minikube start --cni=calico. Until then, the service credential
(AUTH_API_KEY) is what keeps strangers out of auth.`))
	}
}
