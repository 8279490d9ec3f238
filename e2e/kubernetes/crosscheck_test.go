package kubernetes

import (
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
	t.Errorf("image %q is not kub-demo-{auth,users,tasks}:%s (Makefile VERSION)", image, version)
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
					checkValueFrom(t, set, where, e)
				}
			}
			if len(c.EnvFrom) > 0 {
				t.Errorf("%s: envFrom hides which variables a container gets; list them in env", where)
			}

			// The process listens on PORT: exactly one container port, equal to it.
			listen, _ := envValue(t, c, svc, "PORT")
			if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != listen {
				t.Errorf("%s: ports %v, but the process listens on PORT=%s only", where, c.Ports, listen)
			}
			for _, cp := range c.Ports {
				if cp.Name == "" {
					continue
				}
				if other, dup := seenPortNames[cp.Name]; dup {
					t.Errorf("%s: port name %q also used by container %s of the same pod", where, cp.Name, other)
				}
				seenPortNames[cp.Name] = c.Name
			}

			// Probes: httpGet on this container's own port, on the health routes.
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
				if pc, _ := findPort(&corev1.PodSpec{Containers: []corev1.Container{*c}}, pr.HTTPGet.Port); pc == nil {
					t.Errorf("%s: %s probe port %s is not a port of this container", where, kind, pr.HTTPGet.Port.String())
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

			// The kubelet sends SIGKILL after terminationGracePeriodSeconds: the
			// service's own drain deadline must end before that.
			grace := int64(30)
			if p.Spec.TerminationGracePeriodSeconds != nil {
				grace = *p.Spec.TerminationGracePeriodSeconds
			}
			if v, ok := envValue(t, c, svc, "SHUTDOWN_TIMEOUT"); ok {
				d, err := time.ParseDuration(v)
				if err != nil {
					t.Errorf("%s: SHUTDOWN_TIMEOUT %q: %v", where, v, err)
				} else if time.Duration(grace)*time.Second <= d {
					t.Errorf("%s: terminationGracePeriodSeconds %d is not above SHUTDOWN_TIMEOUT %s", where, grace, d)
				}
			}
		}
	}
}

func checkValueFrom(t *testing.T, set *manifestSet, where string, e corev1.EnvVar) {
	switch vf := e.ValueFrom; {
	case vf.SecretKeyRef != nil:
		sec := set.secret(vf.SecretKeyRef.Name)
		if sec == nil {
			t.Errorf("%s: %s from Secret %q, which this set does not create", where, e.Name, vf.SecretKeyRef.Name)
			return
		}
		_, inData := sec.Data[vf.SecretKeyRef.Key]
		_, inString := sec.StringData[vf.SecretKeyRef.Key]
		if !inData && !inString {
			t.Errorf("%s: %s from key %q of Secret %s, which has no such key", where, e.Name, vf.SecretKeyRef.Key, sec.Name)
		}
	case vf.ResourceFieldRef != nil, vf.FieldRef != nil:
	default:
		t.Errorf("%s: %s: valueFrom kind not modelled by these checks", where, e.Name)
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
				val, set := "", false
				for _, e := range c.Env {
					if e.Name == name {
						val, set = e.Value, true
					}
				}
				if !set {
					t.Errorf("%s/%s: %s not set; the data folder must be on a mounted volume", p.Deployment.Name, c.Name, name)
					continue
				}
				if m, ok := mountFor(mounts, val); !ok || m.ReadOnly {
					t.Errorf("%s/%s: %s=%s is not on a writable volume mount", p.Deployment.Name, c.Name, name, val)
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
// an mk/*.mk file) tags kub-demo-<svc>:$(VERSION) for each of the three services.
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
