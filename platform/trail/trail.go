// Package trail lets every answer say which pod served it, so that a learner can see where
// the network sent each request: the X-Served-By header names the service, the pod (its
// host name, which Kubernetes sets to the pod's name), its IP, its node and its version.
// tasks adds X-Auth-Verified-By: which auth pod verified the caller's token, or that its
// verified-token cache answered and when auth had. Bodies are never changed.
package trail

import (
	"context"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// The headers.
const (
	ServedBy       = "X-Served-By"
	AuthVerifiedBy = "X-Auth-Verified-By"
)

// Pod is what X-Served-By says of this process.
type Pod struct {
	Service, Name, IP, Node, Version string
}

// String is the header's value: "tasks tasks-deployment-5d2f-x7k 10.244.0.7 node-1 v0.1.0",
// with "-" for what is not known (the node outside Kubernetes).
func (p Pod) String() string {
	fields := []string{p.Service, p.Name, p.IP, p.Node, p.Version}
	for i, f := range fields {
		if f == "" {
			fields[i] = "-"
		}
	}
	return strings.Join(fields, " ")
}

// Here describes this process as service: its host name, its first address that is not a
// loopback one, nodeName (NODE_NAME, which deploy/k8s sets from spec.nodeName), and the
// version its build carries.
func Here(service, nodeName string) Pod {
	name, _ := os.Hostname()
	return Pod{Service: service, Name: name, IP: firstAddress(), Node: nodeName, Version: version()}
}

func firstAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return ""
}

// version is the module version of the build, or its commit, or "dev".
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 7 {
			return s.Value[:7]
		}
	}
	return "dev"
}

// Verification is where a token's verification came from, for X-Auth-Verified-By.
type Verification struct {
	By     string    // auth's X-Served-By on the answer that verified it ("" if none)
	At     time.Time // when auth verified it
	Cached bool      // answered from the verified-token cache
}

// String is X-Auth-Verified-By's value: "auth auth-7c9-x 10.244.0.5 node-1 v0.1.0", then
// "; cached 4s ago" when the cache answered.
func (v Verification) String() string {
	by := v.By
	if by == "" {
		by = "auth (it did not say which pod)"
	}
	if !v.Cached {
		return by
	}
	return by + "; cached " + time.Since(v.At).Round(time.Second).String() + " ago"
}

type verifiedKey struct{}

// OnVerified returns ctx with report, which Verified calls: the server's middleware sets
// X-Auth-Verified-By with it, before the handler writes its answer.
func OnVerified(ctx context.Context, report func(Verification)) context.Context {
	return context.WithValue(ctx, verifiedKey{}, report)
}

// Verified tells the request of ctx where its token's verification came from, when it asked
// (OnVerified); the auth client calls it.
func Verified(ctx context.Context, v Verification) {
	if report, ok := ctx.Value(verifiedKey{}).(func(Verification)); ok {
		report(v)
	}
}

// Middleware sets X-Served-By to pod on every answer, and X-Auth-Verified-By on those whose
// token the auth client verified.
func Middleware(pod Pod) func(http.Handler) http.Handler {
	value := []string{pod.String()} // shared: header values are never changed in place
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()[ServedBy] = value
			ctx := OnVerified(r.Context(), func(v Verification) { w.Header().Set(AuthVerifiedBy, v.String()) })
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
