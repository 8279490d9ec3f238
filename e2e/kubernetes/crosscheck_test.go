package kubernetes

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runtimeEnv are variables the Go runtime reads, not the service: allowed in a manifest
// even though "<binary> -env" does not list them.
var runtimeEnv = map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true, "GOGC": true, "GODEBUG": true}

// makeVersion reads VERSION from the Makefile or mk/*.mk ("VERSION ?= 0.1.0").
func makeVersion(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "mk", "*.mk"))
	files = append([]string{filepath.Join(repoRoot, "Makefile")}, files...)
	re := regexp.MustCompile(`(?m)^\s*VERSION\s*[:?]?=\s*(\S+)\s*$`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := re.FindSubmatch(data); m != nil {
			return string(m[1])
		}
	}
	t.Fatalf("no VERSION ?= … in Makefile or mk/*.mk")
	return ""
}

// imageService returns the service an image runs: kub-demo-<svc>:<VERSION>, the
// names "make images" builds, so an image built into minikube is found.
func imageService(t *testing.T, image string) string {
	t.Helper()
	version := makeVersion(t)
	for _, svc := range services {
		if image == "kub-demo-"+svc+":"+version {
			return svc
		}
	}
	t.Errorf("image %q is not kub-demo-{auth,users,tasks,frontend}:%s (Makefile VERSION)", image, version)
	return ""
}

// podTemplate is a Deployment's pod template with its owner, for messages.
type podTemplate struct {
	Deployment *appsv1.Deployment
	Labels     labels.Set
	Spec       *corev1.PodSpec
}

func (s *manifestSet) pods() []podTemplate {
	var pods []podTemplate
	for _, d := range s.Deployments {
		pods = append(pods, podTemplate{Deployment: d, Labels: d.Spec.Template.Labels, Spec: &d.Spec.Template.Spec})
	}
	return pods
}

// selected returns the pod templates a Service selects.
func (s *manifestSet) selected(svc *corev1.Service) []podTemplate {
	var out []podTemplate
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	for _, p := range s.pods() {
		if sel.Matches(p.Labels) {
			out = append(out, p)
		}
	}
	return out
}

// findPort resolves a port reference (a number or a port name) against a pod, the
// way the endpoints controller resolves a Service targetPort.
func findPort(spec *corev1.PodSpec, ref intstr.IntOrString) (*corev1.Container, *corev1.ContainerPort) {
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for j := range c.Ports {
			p := &c.Ports[j]
			if (ref.Type == intstr.String && p.Name == ref.StrVal) || (ref.Type == intstr.Int && p.ContainerPort == ref.IntVal) {
				return c, p
			}
		}
	}
	return nil, nil
}

// envValue returns what a variable holds in a container: the manifest's literal value
// when it sets one, otherwise the default the binary reports.
func envValue(t *testing.T, c *corev1.Container, svc, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	v, ok := envOf(t, svc)[name]
	return v.Default, ok
}

func TestCrossChecks(t *testing.T) {
	for _, dir := range manifestSets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			set := loadSet(t, dir)
			t.Run("deployments", func(t *testing.T) { checkDeployments(t, set) })
			t.Run("services", func(t *testing.T) { checkServices(t, set) })
			t.Run("containers", func(t *testing.T) { checkContainers(t, set) })
			t.Run("volumes", func(t *testing.T) { checkVolumes(t, set) })
			t.Run("api-key", func(t *testing.T) { checkAPIKey(t, set) })
			t.Run("network-policies", func(t *testing.T) { checkPolicyPorts(t, set) })
			t.Run("security", func(t *testing.T) { checkSecurity(t, set) })
		})
	}
}

func checkDeployments(t *testing.T, set *manifestSet) {
	for _, d := range set.Deployments {
		if d.Spec.Selector == nil {
			t.Errorf("deployment %s: no selector", d.Name)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("deployment %s: selector %v: %v", d.Name, d.Spec.Selector, err)
			continue
		}
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("deployment %s: selector %s does not match its pod labels %v", d.Name, sel, d.Spec.Template.Labels)
		}
		// Two Deployments whose selectors match each other's pods fight over them.
		for _, other := range set.Deployments {
			if other != d && sel.Matches(labels.Set(other.Spec.Template.Labels)) {
				t.Errorf("deployment %s: selector %s also matches the pods of %s", d.Name, sel, other.Name)
			}
		}
	}
	for _, b := range set.Budgets {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			t.Errorf("pdb %s: %v", b.Name, err)
			continue
		}
		n := 0
		for _, p := range set.pods() {
			if sel.Matches(p.Labels) {
				n++
				if b.Spec.MinAvailable != nil && p.Deployment.Spec.Replicas != nil &&
					b.Spec.MinAvailable.IntValue() >= int(*p.Deployment.Spec.Replicas) {
					t.Errorf("pdb %s: minAvailable %s with %d replicas of %s blocks every eviction",
						b.Name, b.Spec.MinAvailable.String(), *p.Deployment.Spec.Replicas, p.Deployment.Name)
				}
			}
		}
		if n == 0 {
			t.Errorf("pdb %s: selects no pods", b.Name)
		}
	}
}

func checkServices(t *testing.T, set *manifestSet) {
	for _, svc := range set.Services {
		pods := set.selected(svc)
		if len(pods) == 0 {
			t.Errorf("service %s: selector %v matches no pod template", svc.Name, svc.Spec.Selector)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port) // targetPort defaults to port
			}
			for _, p := range pods {
				c, cp := findPort(p.Spec, target)
				if cp == nil {
					t.Errorf("service %s port %d: targetPort %s is no container port of %s", svc.Name, sp.Port, target.String(), p.Deployment.Name)
					continue
				}
				if proto := sp.Protocol; proto != "" && cp.Protocol != "" && proto != cp.Protocol {
					t.Errorf("service %s: protocol %s, container port %s", svc.Name, proto, cp.Protocol)
				}
				image := imageService(t, c.Image)
				if image == "" {
					continue
				}
				// Where the traffic goes must be where the process listens.
				listen, _ := envValue(t, c, image, "PORT")
				if strconv.Itoa(int(cp.ContainerPort)) != listen {
					t.Errorf("service %s → %s/%s containerPort %d, but the process listens on PORT=%s",
						svc.Name, p.Deployment.Name, c.Name, cp.ContainerPort, listen)
				}
				// auth must never be reachable from outside the cluster.
				if image == "auth" && svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
					t.Errorf("service %s exposes auth with type %s; auth must stay ClusterIP", svc.Name, svc.Spec.Type)
				}
			}
		}
	}
	// The contract's public addresses.
	want := map[string]struct {
		typ  corev1.ServiceType
		port int32
	}{
		"auth-service":  {corev1.ServiceTypeClusterIP, 80},
		"users-service": {corev1.ServiceTypeLoadBalancer, 8080},
		"tasks-service": {corev1.ServiceTypeLoadBalancer, 8000},
	}
	for _, svc := range set.Services {
		w, ok := want[svc.Name]
		if !ok {
			continue
		}
		typ := svc.Spec.Type
		if typ == "" {
			typ = corev1.ServiceTypeClusterIP
		}
		if typ != w.typ || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != w.port {
			t.Errorf("service %s: %s %v, want %s port %d", svc.Name, typ, svc.Spec.Ports, w.typ, w.port)
		}
	}
	if set.Dir == "deploy/k8s" {
		for name := range want {
			found := false
			for _, svc := range set.Services {
				found = found || svc.Name == name
			}
			if !found {
				t.Errorf("service %s missing", name)
			}
		}
	}
}

func checkContainers(t *testing.T, set *manifestSet) {
	for _, p := range set.pods() {
		seenPortNames := map[string]string{}
		seenPorts := map[int32]string{}
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			where := p.Deployment.Name + "/" + c.Name
			svc := imageService(t, c.Image)
			if svc == "" {
				continue
			}
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("%s: imagePullPolicy %q; images built into minikube need IfNotPresent", where, c.ImagePullPolicy)
			}
			reads := envOf(t, svc)

			// Env names ↔ what the service reads; values from Secrets that exist.
			seen := map[string]bool{}
			for _, e := range c.Env {
				if seen[e.Name] {
					t.Errorf("%s: %s set twice", where, e.Name)
				}
				seen[e.Name] = true
				if _, ok := reads[e.Name]; !ok && !runtimeEnv[e.Name] {
					t.Errorf("%s: sets %s, which %s does not read (it reads %v)", where, e.Name, svc, keys(reads))
				}
				if strings.Contains(e.Value, "$(") {
					t.Errorf("%s: %s uses $(VAR) expansion, which these checks do not model", where, e.Name)
				}
				if e.ValueFrom != nil {
					checkValueFrom(t, set, c, where, e)
				}
			}
			if len(c.EnvFrom) > 0 {
				t.Errorf("%s: envFrom hides which variables a container gets; list them in env", where)
			}
			checkMemoryLimit(t, c, where)

			// The process listens on PORT and serves /metrics on METRICS_PORT: the
			// container declares exactly those two ports, and no other container of the
			// pod (one network namespace) declares them too.
			listen, metrics, err := listenPorts(t, c, svc)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if listen == metrics {
				t.Errorf("%s: PORT and METRICS_PORT are both %d", where, listen)
			}
			var declared []int32
			for _, cp := range c.Ports {
				declared = append(declared, cp.ContainerPort)
				if other, dup := seenPorts[cp.ContainerPort]; dup {
					t.Errorf("%s: port %d also declared by container %s of the same pod, which shares its network namespace", where, cp.ContainerPort, other)
				}
				seenPorts[cp.ContainerPort] = c.Name
				if cp.Name == "" {
					t.Errorf("%s: port %d has no name; probes, Services and policies refer to ports by name", where, cp.ContainerPort)
					continue
				}
				if other, dup := seenPortNames[cp.Name]; dup {
					t.Errorf("%s: port name %q also used by container %s of the same pod", where, cp.Name, other)
				}
				seenPortNames[cp.Name] = c.Name
			}
			slices.Sort(declared)
			if want := []int32{min(listen, metrics), max(listen, metrics)}; !slices.Equal(declared, want) {
				t.Errorf("%s: container ports %v, but the process listens on PORT=%d and METRICS_PORT=%d", where, declared, listen, metrics)
			}

			// Probes: httpGet on the health routes, on the port the process serves them
			// on (its public port; the metrics port answers /metrics only).
			probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
			wantPath := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}
			for kind, pr := range probes {
				if pr == nil || pr.HTTPGet == nil {
					t.Errorf("%s: no httpGet %s probe", where, kind)
					continue
				}
				if pr.HTTPGet.Path != wantPath[kind] {
					t.Errorf("%s: %s probe path %q, want %q", where, kind, pr.HTTPGet.Path, wantPath[kind])
				}
				if _, cp := findPort(&corev1.PodSpec{Containers: []corev1.Container{*c}}, pr.HTTPGet.Port); cp == nil || cp.ContainerPort != listen {
					t.Errorf("%s: %s probe port %s is not this container's PORT (%d)", where, kind, pr.HTTPGet.Port.String(), listen)
				}
				if pr.HTTPGet.Host != "" {
					t.Errorf("%s: %s probe sets host %q", where, kind, pr.HTTPGet.Host)
				}
			}

			// Requests and limits for CPU and memory.
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					t.Errorf("%s: no %s request", where, r)
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					t.Errorf("%s: no %s limit", where, r)
				}
			}
			checkShutdown(t, p, c, svc, where)
		}
		checkScrapeAnnotations(t, p)
	}
}

// listenPorts returns the ports the process listens on: PORT and METRICS_PORT, as the
// manifest sets them or, where it does not, as the binary's defaults.
func listenPorts(t *testing.T, c *corev1.Container, svc string) (listen, metrics int32, err error) {
	t.Helper()
	for name, port := range map[string]*int32{"PORT": &listen, "METRICS_PORT": &metrics} {
		v, ok := envValue(t, c, svc, name)
		if !ok {
			return 0, 0, fmt.Errorf("%s does not read %s (%s -env)", svc, name, svc)
		}
		n, perr := strconv.ParseInt(v, 10, 32)
		if perr != nil {
			return 0, 0, fmt.Errorf("%s=%q: %v", name, v, perr)
		}
		*port = int32(n)
	}
	return listen, metrics, nil
}

// envDuration is a duration variable's value in a container (manifest or default).
func envDuration(t *testing.T, c *corev1.Container, svc, name string) (time.Duration, error) {
	t.Helper()
	v, ok := envValue(t, c, svc, name)
	if !ok {
		return 0, fmt.Errorf("%s does not read %s (%s -env)", svc, name, svc)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %v", name, v, err)
	}
	return d, nil
}

// checkShutdown: when a pod is deleted, the service answers 503 on /readyz and keeps
// serving for SHUTDOWN_DELAY, then drains for up to SHUTDOWN_TIMEOUT. The readiness
// probe must notice the 503 before the delay ends (or the endpoint outlives the
// listener), and the kubelet must not send SIGKILL before the drain ends.
func checkShutdown(t *testing.T, p podTemplate, c *corev1.Container, svc, where string) {
	t.Helper()
	delay, err := envDuration(t, c, svc, "SHUTDOWN_DELAY")
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	timeout, err := envDuration(t, c, svc, "SHUTDOWN_TIMEOUT")
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if delay <= 0 {
		t.Errorf("%s: SHUTDOWN_DELAY %s: the listener would close while the endpoint still receives traffic", where, delay)
	}
	if pr := c.ReadinessProbe; pr != nil {
		// 0 is "not set": the API server fills in the defaults, 10s and 3.
		period, failures := cmp.Or(pr.PeriodSeconds, 10), cmp.Or(pr.FailureThreshold, 3)
		if noticed := time.Duration(period*failures) * time.Second; noticed >= delay {
			t.Errorf("%s: readiness probe notices a 503 after up to %s (periodSeconds %d x failureThreshold %d), not before SHUTDOWN_DELAY %s ends",
				where, noticed, period, failures, delay)
		}
	}
	var preStop time.Duration
	if lc := c.Lifecycle; lc != nil && lc.PreStop != nil {
		if lc.PreStop.Sleep == nil {
			t.Errorf("%s: preStop other than sleep; the images hold no shell or other binary to exec", where)
		} else {
			preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
		}
	}
	grace := time.Duration(orDefault(p.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if need := preStop + delay + timeout; grace <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %s is not above preStop %s + SHUTDOWN_DELAY %s + SHUTDOWN_TIMEOUT %s",
			where, grace, preStop, delay, timeout)
	}
}

func orDefault[T int32 | int64](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// checkScrapeAnnotations: Prometheus finds the pod by its prometheus.io annotations,
// which must name a port some container serves /metrics on.
func checkScrapeAnnotations(t *testing.T, p podTemplate) {
	t.Helper()
	ann := p.Deployment.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: pod annotations %v, want prometheus.io/scrape \"true\" and prometheus.io/path /metrics", p.Deployment.Name, ann)
	}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		if svc := imageService(t, c.Image); svc != "" {
			if _, metrics, err := listenPorts(t, c, svc); err == nil && strconv.Itoa(int(metrics)) == ann["prometheus.io/port"] {
				return
			}
		}
	}
	t.Errorf("%s: prometheus.io/port %q is no container's METRICS_PORT", p.Deployment.Name, ann["prometheus.io/port"])
}

func checkValueFrom(t *testing.T, set *manifestSet, c *corev1.Container, where string, e corev1.EnvVar) {
	switch vf := e.ValueFrom; {
	case vf.SecretKeyRef != nil:
		sec := set.secret(vf.SecretKeyRef.Name)
		if sec == nil {
			t.Errorf("%s: %s from Secret %q, which this set does not create", where, e.Name, vf.SecretKeyRef.Name)
			return
		}
		_, inData := sec.Data[vf.SecretKeyRef.Key]
		_, inString := sec.StringData[vf.SecretKeyRef.Key]
		optional := vf.SecretKeyRef.Optional != nil && *vf.SecretKeyRef.Optional
		if !inData && !inString && !optional {
			t.Errorf("%s: %s from key %q of Secret %s, which has no such key", where, e.Name, vf.SecretKeyRef.Key, sec.Name)
		}
	case vf.ResourceFieldRef != nil:
		// GOMAXPROCS may follow the CPU limit. GOMEMLIMIT is a literal below the memory
		// limit (checkMemoryLimit): the container's whole limit left the runtime no room.
		want := map[string]string{"GOMAXPROCS": "limits.cpu"}[e.Name]
		ref := vf.ResourceFieldRef
		if ref.Resource != want || (ref.ContainerName != "" && ref.ContainerName != c.Name) {
			t.Errorf("%s: %s from %s of container %q, want %q of this container", where, e.Name, ref.Resource, ref.ContainerName, want)
		}
		if _, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(want, "limits."))]; !ok {
			t.Errorf("%s: %s from %s, which this container does not set", where, e.Name, want)
		}
	case vf.FieldRef != nil:
	default:
		t.Errorf("%s: %s: valueFrom kind not modelled by these checks", where, e.Name)
	}
}

// Every caller of auth presents AUTH_API_KEY, and auth requires it: all of them must
// take it from the same Secret key, or every call to auth is refused.
func checkAPIKey(t *testing.T, set *manifestSet) {
	refs := map[string][]string{} // "secret/key" -> containers
	for _, p := range set.pods() {
		for _, c := range p.Spec.Containers {
			where := p.Deployment.Name + "/" + c.Name
			svc := imageService(t, c.Image)
			if _, reads := envOf(t, svc)["AUTH_API_KEY"]; svc == "" || !reads {
				continue // the frontend never calls auth
			}
			ref := "(not set)"
			for _, e := range c.Env {
				if e.Name != "AUTH_API_KEY" {
					continue
				}
				ref = "(a literal value)"
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				}
			}
			refs[ref] = append(refs[ref], where)
		}
	}
	if len(refs) != 1 {
		t.Errorf("AUTH_API_KEY differs between containers: %v; all take it from one Secret key", refs)
	}
	for ref := range refs {
		if strings.HasPrefix(ref, "(") {
			t.Errorf("AUTH_API_KEY %s in %v: take it from a Secret", ref, refs[ref])
		}
	}
}

func checkVolumes(t *testing.T, set *manifestSet) {
	claimUsers := map[string][]string{}
	for _, p := range set.pods() {
		vols := map[string]*corev1.Volume{}
		for i := range p.Spec.Volumes {
			v := &p.Spec.Volumes[i]
			vols[v.Name] = v
			if v.PersistentVolumeClaim != nil {
				name := v.PersistentVolumeClaim.ClaimName
				claimUsers[name] = append(claimUsers[name], p.Deployment.Name)
				c := set.claim(name)
				if c == nil {
					t.Errorf("%s: volume %s uses claim %q, which this set does not create", p.Deployment.Name, v.Name, name)
					continue
				}
				// A ReadWriteOnce volume attaches to one node, and our stores are single
				// files with one writer: one replica, and Recreate so that the old pod
				// lets go of the volume before the new one mounts it.
				rwo := false
				for _, m := range c.Spec.AccessModes {
					rwo = rwo || m == corev1.ReadWriteOnce || m == corev1.ReadWriteOncePod
				}
				if rwo {
					if r := p.Deployment.Spec.Replicas; r == nil || *r != 1 {
						t.Errorf("%s: mounts ReadWriteOnce claim %s, so it needs exactly 1 replica", p.Deployment.Name, name)
					}
					if p.Deployment.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
						t.Errorf("%s: mounts ReadWriteOnce claim %s, so it needs strategy Recreate", p.Deployment.Name, name)
					}
				}
				if v.PersistentVolumeClaim.ReadOnly {
					t.Errorf("%s: claim %s mounted read-only", p.Deployment.Name, name)
				}
			}
		}
		used := map[string]bool{}
		for _, c := range p.Spec.Containers {
			svc := imageService(t, c.Image)
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				if vols[m.Name] == nil {
					t.Errorf("%s/%s: mount %s names no volume of the pod", p.Deployment.Name, c.Name, m.Name)
				}
				used[m.Name] = true
				mounts[m.MountPath] = m
			}
			if svc == "" {
				continue
			}
			// A data folder must be set explicitly (not left to the image's ENV) and lie
			// on a writable volume: the root filesystem is read-only, and data on it
			// would vanish with the pod anyway.
			for name := range envOf(t, svc) {
				if !strings.HasSuffix(name, "_FOLDER") {
					continue
				}
				val, found := "", false
				for _, e := range c.Env {
					if e.Name == name {
						val, found = e.Value, true
					}
				}
				if !found {
					t.Errorf("%s/%s: %s not set; the data folder must be on a mounted volume", p.Deployment.Name, c.Name, name)
					continue
				}
				m, ok := mountFor(mounts, val)
				if !ok || m.ReadOnly {
					t.Errorf("%s/%s: %s=%s is not on a writable volume mount", p.Deployment.Name, c.Name, name, val)
					continue
				}
				if v := vols[m.Name]; v != nil && v.PersistentVolumeClaim != nil {
					checkClaimHoldsStore(t, set, &c, svc, p.Deployment.Name+"/"+c.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
		for name := range vols {
			if !used[name] {
				t.Errorf("%s: volume %s is mounted by no container", p.Deployment.Name, name)
			}
		}
	}
	for _, c := range set.Claims {
		if users := claimUsers[c.Name]; len(users) != 1 {
			t.Errorf("claim %s: used by %v; each store needs its own claim", c.Name, users)
		}
	}
}

// The store keeps growing until its ceiling: <SVC>_MAX_BYTES when the manifest sets it,
// else derived from GOMEMLIMIT as (GOMEMLIMIT - 16 MiB) / 2 (platform/service.StoreCeiling).
// The claim it writes to must hold that much, or the disk fills before the store stops
// taking records.
func checkClaimHoldsStore(t *testing.T, set *manifestSet, c *corev1.Container, svc, where, claimName string) {
	t.Helper()
	claim := set.claim(claimName)
	if claim == nil {
		return // reported by checkVolumes
	}
	var ceiling int64
	from := ""
	for name := range envOf(t, svc) {
		if v, ok := literalEnv(c, name); ok && strings.HasSuffix(name, "_MAX_BYTES") && v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Errorf("%s: %s=%q: %v", where, name, v, err)
				return
			}
			ceiling, from = n, name
		}
	}
	if from == "" {
		value, _ := literalEnv(c, "GOMEMLIMIT")
		limit, err := goMemoryLimit(value)
		if err != nil {
			t.Errorf("%s: GOMEMLIMIT=%q: %v; the store's ceiling derives from it", where, value, err)
			return
		}
		ceiling, from = max((limit-16<<20)/2, 1<<20), "(GOMEMLIMIT "+value+" - 16Mi) / 2"
	}
	request := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if request.Value() < ceiling {
		t.Errorf("%s: claim %s requests %s, less than the store's ceiling %d MiB (%s)", where, claimName, request.String(), ceiling>>20, from)
	}
	t.Logf("%s: store ceiling %d MiB (%s), claim %s of %s", where, ceiling>>20, from, claimName, request.String())
}

// literalEnv is the value the manifest gives a variable, if it sets it literally.
func literalEnv(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// mountFor returns the mount a path lies on.
func mountFor(mounts map[string]corev1.VolumeMount, path string) (corev1.VolumeMount, bool) {
	best, found := corev1.VolumeMount{}, false
	for mp, m := range mounts {
		if path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/") {
			if !found || len(mp) > len(best.MountPath) {
				best, found = m, true
			}
		}
	}
	return best, found
}

func checkSecurity(t *testing.T, set *manifestSet) {
	for _, p := range set.pods() {
		psc := p.Spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken not false; no service talks to the API server", p.Deployment.Name)
		}
		seccompPod := psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
		hasClaim := false
		for _, v := range p.Spec.Volumes {
			hasClaim = hasClaim || v.PersistentVolumeClaim != nil
		}
		if hasClaim && (psc.FSGroup == nil || *psc.FSGroup != 65532) {
			t.Errorf("%s: mounts a claim without fsGroup 65532; uid 65532 could not write it", p.Deployment.Name)
		}
		unprivStart := 1024
		for _, s := range psc.Sysctls {
			if s.Name == "net.ipv4.ip_unprivileged_port_start" {
				unprivStart, _ = strconv.Atoi(s.Value)
			}
		}
		for _, c := range p.Spec.Containers {
			where := p.Deployment.Name + "/" + c.Name
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			nonRoot := first(sc.RunAsNonRoot, psc.RunAsNonRoot)
			uid := first(sc.RunAsUser, psc.RunAsUser)
			gid := first(sc.RunAsGroup, psc.RunAsGroup)
			if nonRoot == nil || !*nonRoot {
				t.Errorf("%s: runAsNonRoot not true", where)
			}
			if uid == nil || *uid != 65532 || gid == nil || *gid != 65532 {
				t.Errorf("%s: runAsUser/runAsGroup not 65532 (the image's USER)", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation not false", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem not true", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %v; want drop [ALL] and add nothing", where, sc.Capabilities)
			}
			if !seccompPod && (sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
				t.Errorf("%s: no RuntimeDefault seccomp profile", where)
			}
			// Without capabilities, a non-root process binds a port below 1024 only
			// when the pod lowers ip_unprivileged_port_start.
			for _, cp := range c.Ports {
				if int(cp.ContainerPort) < unprivStart {
					t.Errorf("%s: listens on %d as uid 65532 with no capabilities; set the pod sysctl net.ipv4.ip_unprivileged_port_start to at most %d",
						where, cp.ContainerPort, cp.ContainerPort)
				}
			}
		}
	}
}

func first[T any](ptrs ...*T) *T {
	for _, p := range ptrs {
		if p != nil {
			return p
		}
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The images the manifests run are the ones "make images" builds: the Makefile (or
// an mk/*.mk file) tags kub-demo-<svc>:$(VERSION) for each service.
func TestImagesMatchMakefile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "mk", "*.mk"))
	files = append([]string{filepath.Join(repoRoot, "Makefile")}, files...)
	var all strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			all.Write(data)
			all.WriteByte('\n')
		}
	}
	mk := all.String()
	loop := regexp.MustCompile(`kub-demo-\$\$\{?svc\}?:\$\(VERSION\)`).MatchString(mk)
	svcs := regexp.MustCompile(`(?m)^SERVICES\s*[:?]?=\s*(.*)$`).FindStringSubmatch(mk)
	for _, svc := range services {
		literal := strings.Contains(mk, "kub-demo-"+svc+":$(VERSION)")
		inLoop := loop && svcs != nil && slices.Contains(strings.Fields(svcs[1]), svc)
		if !literal && !inLoop {
			t.Errorf("no make target builds kub-demo-%s:$(VERSION)", svc)
		}
	}
	version := makeVersion(t)
	for _, dir := range manifestSets {
		set := loadSet(t, dir)
		n := 0
		for _, p := range set.pods() {
			for _, c := range p.Spec.Containers {
				n++
				imageService(t, c.Image) // fails unless kub-demo-<svc>:<VERSION>
			}
		}
		t.Logf("%s: %d containers, all kub-demo-*:%s", dir, n, version)
	}
}

// A NetworkPolicy names ports; a name or number that no selected pod declares makes the
// rule match nothing, silently, once a network plugin enforces it. (This cluster, like
// minikube's default plugin, does not enforce policies, so a real run cannot see this.)
func checkPolicyPorts(t *testing.T, set *manifestSet) {
	for _, np := range set.NetworkPolicies {
		subjects := set.podsMatching(t, np.Spec.PodSelector)
		if len(subjects) == 0 {
			t.Errorf("networkpolicy %s: selects no pod", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			checkPortsExist(t, "networkpolicy "+np.Name+" ingress", subjects, rule.Ports)
		}
		for _, rule := range np.Spec.Egress {
			for _, peer := range rule.To {
				if peer.NamespaceSelector != nil || peer.PodSelector == nil {
					continue // pods of another namespace: not in this set
				}
				targets := set.podsMatching(t, *peer.PodSelector)
				if len(targets) == 0 {
					t.Errorf("networkpolicy %s: egress to %v, which selects no pod", np.Name, peer.PodSelector)
				}
				checkPortsExist(t, "networkpolicy "+np.Name+" egress", targets, rule.Ports)
			}
		}
	}
}

func (s *manifestSet) podsMatching(t *testing.T, ls metav1.LabelSelector) []podTemplate {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		t.Errorf("selector %v: %v", ls, err)
		return nil
	}
	var out []podTemplate
	for _, p := range s.pods() {
		if sel.Matches(p.Labels) {
			out = append(out, p)
		}
	}
	return out
}

func checkPortsExist(t *testing.T, where string, pods []podTemplate, ports []networkingv1.NetworkPolicyPort) {
	t.Helper()
	for _, port := range ports {
		if port.Port == nil {
			continue
		}
		for _, p := range pods {
			if _, cp := findPort(p.Spec, *port.Port); cp == nil {
				t.Errorf("%s: port %s is no container port of %s", where, port.Port.String(), p.Deployment.Name)
			}
		}
	}
}

// checkMemoryLimit: GOMEMLIMIT is set, below the container's memory limit with room for what
// the Go runtime does not count (goroutine stacks it has not yet returned, the binary, the
// kernel's accounting of the container), and not so far below that the collector works
// for nothing: from 75% to 95% of the limit.
func checkMemoryLimit(t *testing.T, c *corev1.Container, where string) {
	t.Helper()
	value, ok := literalEnv(c, "GOMEMLIMIT")
	if !ok {
		t.Errorf("%s: no GOMEMLIMIT value: the Go runtime would collect garbage only at GOGC's pace, past the container's limit", where)
		return
	}
	limit, err := goMemoryLimit(value)
	if err != nil {
		t.Errorf("%s: GOMEMLIMIT=%q: %v", where, value, err)
		return
	}
	container, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Errorf("%s: GOMEMLIMIT without a memory limit", where)
		return
	}
	if share := float64(limit) / float64(container.Value()); share < 0.75 || share > 0.95 {
		t.Errorf("%s: GOMEMLIMIT=%s is %.0f%% of the memory limit %s; want 75%% to 95%%", where, value, 100*share, container.String())
	}
}

// goMemoryLimit parses a GOMEMLIMIT value as the Go runtime does: a byte count with an
// optional unit suffix B, KiB, MiB, GiB or TiB.
func goMemoryLimit(value string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	number, shift := value, uint(0)
	for _, u := range units {
		if n, ok := strings.CutSuffix(value, u.suffix); ok {
			number, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive byte count with a unit (B, KiB, MiB, GiB, TiB)")
	}
	return n << shift, nil
}
