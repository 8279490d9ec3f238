package kubernetes

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kub-demo/kub-demo/e2e/stack"
)

// A loopback stand-in for the cluster a manifest set creates. Every container runs as
// the real service binary with the environment the kubelet would give it; what a
// test on one machine without root cannot reproduce is mapped, and each mapping is
// written down here:
//
//   - Every container listens on its own free loopback port instead of its
//     containerPort (several pods would all want 8080, and port 80 needs root):
//     PORT is overridden. The checks in crosscheck_test.go have already proven
//     that containerPort, the Service targetPort and PORT agree.
//   - A Service's ClusterIP:port becomes 127.0.0.1:<loopback port of the container
//     its targetPort resolves to>. The injected <SVC>_SERVICE_HOST/_PORT variables
//     carry that address; cluster DNS names and ClusterIPs in AUTH_ADDRESS are
//     resolved by the cluster's rules (service, service.namespace,
//     service.namespace.svc, service.namespace.svc.cluster.local) and replaced by it.
//   - "localhost" inside a pod is the pod's own network namespace: localhost:<port>
//     is resolved to the container of the same pod that declares that containerPort,
//     and replaced by its loopback address. Nothing else could answer there.
//   - Volumes: a PersistentVolumeClaim is a folder that outlives the processes
//     (t.TempDir() per claim), an emptyDir a folder per pod; paths under a mountPath
//     are rewritten to the folder.
//   - One pod per Deployment, whatever its replicas.
//   - The "kubernetes" Service (the API server) is left out of the injected
//     variables: no container here talks to the API server.
//
// Nothing from the test process's own environment reaches the binaries.

type vcluster struct {
	set      *manifestSet
	pods     []*vpod
	services []*vservice
}

type vpod struct {
	Deployment *appsv1.Deployment
	Spec       *corev1.PodSpec
	Containers []*vcontainer
	Volumes    map[string]string // volume name → host folder
}

type vcontainer struct {
	Pod      *vpod
	C        *corev1.Container
	Svc      string // auth, users or tasks
	Loopback int    // the port it really listens on
	Env      []string
	Notes    []string // how the environment was mapped, for the log
	Proc     *stack.Process
}

type vservice struct {
	S         *corev1.Service
	ClusterIP string                // what the cluster would allocate (for the log)
	Backends  map[int32]*vcontainer // Service port → the container behind it
}

// newCluster lays out pods, ports, folders and Services; claims maps a claim name
// to its folder, so that a second cluster on the same claims sees the same data.
func newCluster(t *testing.T, set *manifestSet, claims map[string]string) *vcluster {
	t.Helper()
	vc := &vcluster{set: set}
	for _, d := range set.Deployments {
		p := &vpod{Deployment: d, Spec: &d.Spec.Template.Spec, Volumes: map[string]string{}}
		for _, v := range p.Spec.Volumes {
			switch {
			case v.PersistentVolumeClaim != nil:
				dir, ok := claims[v.PersistentVolumeClaim.ClaimName]
				if !ok {
					dir = t.TempDir()
					claims[v.PersistentVolumeClaim.ClaimName] = dir
				}
				p.Volumes[v.Name] = dir
			case v.EmptyDir != nil:
				p.Volumes[v.Name] = t.TempDir()
			default:
				t.Fatalf("%s: volume %s: only claims and emptyDir are modelled", d.Name, v.Name)
			}
		}
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			svc := imageService(t, c.Image)
			if svc == "" {
				t.FailNow()
			}
			p.Containers = append(p.Containers, &vcontainer{Pod: p, C: c, Svc: svc, Loopback: stack.FreePort(t)})
		}
		vc.pods = append(vc.pods, p)
	}
	for i, s := range set.Services {
		vs := &vservice{S: s, ClusterIP: fmt.Sprintf("10.96.0.%d", 10+i), Backends: map[int32]*vcontainer{}}
		for _, p := range vc.pods {
			if !set.selectedBy(s, p.Deployment) {
				continue
			}
			for _, sp := range s.Spec.Ports {
				target := sp.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(sp.Port)
				}
				c, _ := findPort(p.Spec, target)
				if c == nil {
					t.Fatalf("service %s port %d: targetPort %s not in %s", s.Name, sp.Port, target.String(), p.Deployment.Name)
				}
				if _, taken := vs.Backends[sp.Port]; !taken {
					vs.Backends[sp.Port] = p.container(c)
				}
			}
		}
		vc.services = append(vc.services, vs)
	}
	for _, p := range vc.pods {
		for _, c := range p.Containers {
			vc.environment(t, c)
		}
	}
	return vc
}

func (s *manifestSet) selectedBy(svc *corev1.Service, d *appsv1.Deployment) bool {
	for _, p := range s.selected(svc) {
		if p.Deployment == d {
			return true
		}
	}
	return false
}

func (p *vpod) container(c *corev1.Container) *vcontainer {
	for _, vc := range p.Containers {
		if vc.C == c {
			return vc
		}
	}
	return nil
}

func (vc *vcluster) service(name string) *vservice {
	for _, s := range vc.services {
		if s.S.Name == name {
			return s
		}
	}
	return nil
}

// serviceLinks returns the variables the kubelet injects for a Service into the
// containers of pods created after it (k8s.io/kubernetes/pkg/kubelet/envvars):
// <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT, <NAME>_SERVICE_PORT_<PORTNAME>, and the
// Docker-link style <NAME>_PORT, <NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR].
// host and portOf give the address: the ClusterIP in a cluster, loopback here.
func serviceLinks(svc *corev1.Service, host string, portOf func(corev1.ServicePort) int) []string {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
		return nil // headless: no variables
	}
	name := envName(svc.Name)
	first := svc.Spec.Ports[0]
	env := []string{
		name + "_SERVICE_HOST=" + host,
		name + "_SERVICE_PORT=" + strconv.Itoa(portOf(first)),
	}
	for _, p := range svc.Spec.Ports {
		if p.Name != "" {
			env = append(env, name+"_SERVICE_PORT_"+envName(p.Name)+"="+strconv.Itoa(portOf(p)))
		}
	}
	proto := func(p corev1.ServicePort) string {
		if p.Protocol == "" {
			return "tcp"
		}
		return strings.ToLower(string(p.Protocol))
	}
	env = append(env, fmt.Sprintf("%s_PORT=%s://%s", name, proto(first), net.JoinHostPort(host, strconv.Itoa(portOf(first)))))
	for _, p := range svc.Spec.Ports {
		prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(proto(p)))
		env = append(env,
			prefix+"="+proto(p)+"://"+net.JoinHostPort(host, strconv.Itoa(portOf(p))),
			prefix+"_PROTO="+proto(p),
			prefix+"_PORT="+strconv.Itoa(portOf(p)),
			prefix+"_ADDR="+host)
	}
	return env
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// environment computes a container's variables: the Service links first, then the
// container's own env (which wins on a clash, as in the kubelet), then the loopback
// mappings described at the top of this file.
func (vc *vcluster) environment(t *testing.T, c *vcontainer) {
	t.Helper()
	where := c.Pod.Deployment.Name + "/" + c.C.Name
	env := newEnv()

	// Service links, for Services that exist when the pod is created. kubectl applies
	// files in name order and documents in file order; a Deployment's pods are
	// created after the Deployment, so we count only the Services applied before it
	// (later ones may or may not exist yet: a race a learner must not depend on).
	links := c.Pod.Spec.EnableServiceLinks == nil || *c.Pod.Spec.EnableServiceLinks
	if links {
		for _, s := range vc.services {
			if vc.set.index(s.S) > vc.set.index(c.Pod.Deployment) {
				continue
			}
			loop := serviceLinks(s.S, "127.0.0.1", func(p corev1.ServicePort) int {
				if b := s.Backends[p.Port]; b != nil {
					return b.Loopback
				}
				return int(p.Port)
			})
			cluster := serviceLinks(s.S, s.ClusterIP, func(p corev1.ServicePort) int { return int(p.Port) })
			for i, kv := range loop {
				env.set(kv)
				if name, _, _ := strings.Cut(kv, "="); strings.HasSuffix(name, "_SERVICE_HOST") || strings.HasSuffix(name, "_SERVICE_PORT") {
					c.note("%s (in the cluster: %s)", kv, cluster[i])
				}
			}
		}
	}

	// The container's own variables.
	for _, e := range c.C.Env {
		val := e.Value
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.SecretKeyRef != nil:
				sec := vc.set.secret(vf.SecretKeyRef.Name)
				if sec == nil {
					t.Fatalf("%s: %s: no Secret %s", where, e.Name, vf.SecretKeyRef.Name)
				}
				if v, ok := sec.StringData[vf.SecretKeyRef.Key]; ok {
					val = v
				} else if v, ok := sec.Data[vf.SecretKeyRef.Key]; ok {
					val = string(v)
				} else {
					t.Fatalf("%s: %s: Secret %s has no key %s", where, e.Name, sec.Name, vf.SecretKeyRef.Key)
				}
			case vf.ResourceFieldRef != nil:
				q := c.C.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(vf.ResourceFieldRef.Resource, "limits."))]
				val = strconv.FormatInt(q.Value(), 10)
			default:
				t.Fatalf("%s: %s: valueFrom not modelled", where, e.Name)
			}
		}
		env.set(e.Name + "=" + val)
	}

	// PORT: a free loopback port instead of the containerPort.
	if old, ok := env.get("PORT"); ok {
		c.note("PORT=%s → %d", old, c.Loopback)
	} else {
		c.note("PORT unset (default %s) → %d", envOf(t, c.Svc)["PORT"].Default, c.Loopback)
	}
	env.set("PORT=" + strconv.Itoa(c.Loopback))

	// Data folders: paths under a mountPath go to the volume's folder.
	for _, kv := range env.list() {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(val, "/") {
			continue
		}
		for _, m := range c.C.VolumeMounts {
			if val == m.MountPath || strings.HasPrefix(val, strings.TrimSuffix(m.MountPath, "/")+"/") {
				dir := filepath.Join(c.Pod.Volumes[m.Name], strings.TrimPrefix(val, m.MountPath))
				env.set(name + "=" + dir)
				c.note("%s=%s → volume %s", name, val, m.Name)
			}
		}
	}

	// AUTH_ADDRESS: resolved as the pod would resolve it.
	if addr, ok := env.get("AUTH_ADDRESS"); ok && addr != "" {
		resolved, how, err := vc.resolve(c.Pod, addr)
		if err != nil {
			t.Fatalf("%s: AUTH_ADDRESS=%s: %v", where, addr, err)
		}
		env.set("AUTH_ADDRESS=" + resolved)
		c.note("AUTH_ADDRESS=%s: %s → %s", addr, how, resolved)
	}
	c.Env = env.list()
}

func (c *vcontainer) note(format string, args ...any) {
	c.Notes = append(c.Notes, fmt.Sprintf(format, args...))
}

// resolve maps an address a pod dials (host or host:port, port 80 when absent, as
// the services read AUTH_ADDRESS) to the loopback address of the container that
// would answer it in the cluster.
func (vc *vcluster) resolve(p *vpod, addr string) (string, string, error) {
	host, port := addr, 80
	if h, ps, err := net.SplitHostPort(addr); err == nil {
		n, err := strconv.Atoi(ps)
		if err != nil {
			return "", "", fmt.Errorf("port %q", ps)
		}
		host, port = h, n
	}
	switch host {
	case "localhost", "127.0.0.1", "::1":
		// The pod's own network namespace: one of its containers must listen there.
		for _, c := range p.Containers {
			for _, cp := range c.C.Ports {
				if int(cp.ContainerPort) == port {
					return fmt.Sprintf("127.0.0.1:%d", c.Loopback),
						fmt.Sprintf("port %d of this pod's network namespace is container %q", port, c.C.Name), nil
				}
			}
		}
		return "", "", fmt.Errorf("no container of pod %s listens on port %d: in the cluster this connection would be refused", p.Deployment.Name, port)
	}
	var svc *vservice
	how := ""
	for _, s := range vc.services {
		if host == s.ClusterIP {
			svc, how = s, "the ClusterIP of service "+s.S.Name
		}
	}
	if svc == nil {
		// The pod's DNS search path: <ns>.svc.cluster.local, svc.cluster.local, cluster.local.
		name := strings.TrimSuffix(host, ".")
		for _, suffix := range []string{"." + namespace + ".svc.cluster.local", "." + namespace + ".svc", "." + namespace} {
			if strings.HasSuffix(name, suffix) {
				name = strings.TrimSuffix(name, suffix)
				break
			}
		}
		if strings.Contains(name, ".") {
			return "", "", fmt.Errorf("%q is no Service name in namespace %s: cluster DNS would not resolve it", host, namespace)
		}
		svc = vc.service(name)
		if svc == nil {
			return "", "", fmt.Errorf("no Service %q in namespace %s: cluster DNS would not resolve %q", name, namespace, host)
		}
		how = "cluster DNS name of service " + name
	}
	b := svc.Backends[int32(port)]
	if b == nil {
		return "", "", fmt.Errorf("service %s has no port %d: in the cluster this connection would fail", svc.S.Name, port)
	}
	return fmt.Sprintf("127.0.0.1:%d", b.Loopback),
		fmt.Sprintf("%s, port %d → %s/%s", how, port, b.Pod.Deployment.Name, b.C.Name), nil
}

// start runs every container, auth first (the others call it per request, but a
// pod that reaches no auth would be seen at once in the flow).
func (vc *vcluster) start(t *testing.T) {
	t.Helper()
	for _, wantAuth := range []bool{true, false} {
		for _, p := range vc.pods {
			for _, c := range p.Containers {
				if (c.Svc == "auth") == wantAuth {
					vc.startContainer(t, c)
				}
			}
		}
	}
}

func (vc *vcluster) startContainer(t *testing.T, c *vcontainer) {
	t.Helper()
	name := c.Pod.Deployment.Name + "/" + c.C.Name
	for _, n := range c.Notes {
		t.Logf("%s: %s", name, n)
	}
	c.Proc = start(t, name, binary(t, c.Svc), c.Env)
}

// publicURL is where a client outside the cluster reaches a Service: through its
// port (on minikube, "minikube service --url" or the tunnel), i.e. the container
// its targetPort resolves to.
func (vc *vcluster) publicURL(t *testing.T, name string) string {
	t.Helper()
	s := vc.service(name)
	if s == nil {
		t.Fatalf("no service %s", name)
	}
	if s.S.Spec.Type != corev1.ServiceTypeLoadBalancer && s.S.Spec.Type != corev1.ServiceTypeNodePort {
		t.Fatalf("service %s is %s: not reachable from outside the cluster", name, s.S.Spec.Type)
	}
	b := s.Backends[s.S.Spec.Ports[0].Port]
	return fmt.Sprintf("http://127.0.0.1:%d", b.Loopback)
}

// probe GETs each container's readiness and liveness probe as the kubelet would.
func (vc *vcluster) probe(t *testing.T) {
	t.Helper()
	for _, p := range vc.pods {
		for _, c := range p.Containers {
			for kind, pr := range map[string]*corev1.Probe{"readiness": c.C.ReadinessProbe, "liveness": c.C.LivenessProbe} {
				if pr == nil || pr.HTTPGet == nil {
					t.Errorf("%s/%s: no %s httpGet probe", p.Deployment.Name, c.C.Name, kind)
					continue
				}
				owner, _ := findPort(&corev1.PodSpec{Containers: []corev1.Container{*c.C}}, pr.HTTPGet.Port)
				if owner == nil {
					t.Errorf("%s/%s: %s probe port %s is not its own", p.Deployment.Name, c.C.Name, kind, pr.HTTPGet.Port.String())
					continue
				}
				url := fmt.Sprintf("http://127.0.0.1:%d%s", c.Loopback, pr.HTTPGet.Path)
				status, body := httpDo(t, "GET", url, "", nil)
				if status != 200 {
					t.Errorf("%s/%s: %s probe GET %s = %d %s; the kubelet would count a failure",
						p.Deployment.Name, c.C.Name, kind, pr.HTTPGet.Path, status, body)
				}
			}
		}
	}
}

// env is an ordered set of NAME=value pairs where a later set replaces the value.
type env struct {
	names []string
	vals  map[string]string
}

func newEnv() *env { return &env{vals: map[string]string{}} }

func (e *env) set(kv string) {
	name, val, _ := strings.Cut(kv, "=")
	if _, ok := e.vals[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vals[name] = val
}

func (e *env) get(name string) (string, bool) {
	v, ok := e.vals[name]
	return v, ok
}

func (e *env) list() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.vals[n])
	}
	return out
}
