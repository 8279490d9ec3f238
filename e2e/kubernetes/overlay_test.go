package kubernetes

import (
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// overlay is the PostgreSQL variant of deploy/k8s (kubectl apply -k deploy/overlays/postgres).
const overlay = "deploy/overlays/postgres"

// find returns the object of type T named name.
func find[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, objs []runtime.Object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok && v.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s in %s", zero, name, overlay)
	return zero
}

// TestOverlay checks what deploy/overlays/postgres is for: users and tasks at 3 replicas with
// rolling updates, a disruption budget, spread over nodes, reading DATABASE_URL from the
// Secret, with no volume; a PostgreSQL StatefulSet behind the Service the URL names; network
// policies that let users and tasks, and only them, reach it; and only settings the binaries
// read.
func TestOverlay(t *testing.T) {
	var objs []runtime.Object
	for _, o := range loadSet(t, overlay).Objects {
		objs = append(objs, o.Obj)
	}
	secret := find[*corev1.Secret](t, objs, "kub-demo-database")
	dbURL, err := url.Parse(secret.StringData["DATABASE_URL"])
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	password, _ := dbURL.User.Password()
	if dbURL.Hostname() != "postgres" || dbURL.Port() != "5432" || dbURL.User.Username() != secret.StringData["POSTGRES_USER"] ||
		password != secret.StringData["POSTGRES_PASSWORD"] || strings.TrimPrefix(dbURL.Path, "/") != secret.StringData["POSTGRES_DB"] {
		t.Errorf("DATABASE_URL %s does not name the postgres Service and the POSTGRES_* of the Secret", dbURL.Redacted())
	}

	db := find[*appsv1.StatefulSet](t, objs, "postgres")
	dbPods := labels.Set(db.Spec.Template.Labels)
	svc := find[*corev1.Service](t, objs, "postgres")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(dbPods) || svc.Spec.Ports[0].Port != 5432 {
		t.Errorf("Service postgres does not lead to the StatefulSet's pods on 5432")
	}
	if headless := find[*corev1.Service](t, objs, db.Spec.ServiceName); headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the StatefulSet's serviceName %s is not a headless Service", db.Spec.ServiceName)
	}
	if c := db.Spec.Template.Spec.Containers[0]; len(db.Spec.VolumeClaimTemplates) != 1 || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("the database should keep its data on a claim and run with a read-only root")
	}
	if !policyAllows(objs, "users", dbPods, 5432) || !policyAllows(objs, "tasks", dbPods, 5432) || policyAllows(objs, "auth", dbPods, 5432) {
		t.Errorf("the network policies should let users and tasks, and only them, reach the database on 5432")
	}

	for _, name := range []string{"users", "tasks"} {
		d := find[*appsv1.Deployment](t, objs, name+"-deployment")
		spec := d.Spec.Template.Spec
		if *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
			d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
			t.Errorf("%s: %d replicas, strategy %+v; want 3, rolling, never fewer than 3 ready", name, *d.Spec.Replicas, d.Spec.Strategy)
		}
		if len(spec.TopologySpreadConstraints) == 0 || spec.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("%s: no topology spread over nodes", name)
		}
		if len(spec.Volumes) != 0 || len(spec.Containers[0].VolumeMounts) != 0 {
			t.Errorf("%s: volumes %v: with the data in the database it needs none", name, spec.Volumes)
		}
		budgets := 0
		for _, o := range objs {
			if pdb, ok := o.(*policyv1.PodDisruptionBudget); ok {
				if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) &&
					pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() == 1 {
					budgets++
				}
			}
		}
		if budgets != 1 {
			t.Errorf("%s: %d disruption budgets of at most one pod down, want 1", name, budgets)
		}

		env := map[string]corev1.EnvVar{}
		for _, e := range spec.Containers[0].Env {
			env[e.Name] = e
		}
		if ref := env["DATABASE_URL"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secret.Name || ref.SecretKeyRef.Key != "DATABASE_URL" {
			t.Errorf("%s: DATABASE_URL is not read from the Secret %s", name, secret.Name)
		}
		out, err := exec.Command(binary(t, name), "-env").Output()
		if err != nil {
			t.Fatal(err)
		}
		for e := range env {
			if runtimeEnv[e] {
				continue
			}
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(e) + `\t`).Match(out) {
				t.Errorf("%s: the manifest sets %s, which %s -env does not list", name, e, name)
			}
		}
	}
	for _, o := range objs {
		if c, ok := o.(*corev1.PersistentVolumeClaim); ok {
			t.Errorf("PersistentVolumeClaim %s is still there: users and tasks keep no files", c.Name)
		}
	}
}

// policyAllows reports whether the NetworkPolicies let pods labelled app=from reach pods
// labelled to on port: an egress rule of theirs and an ingress rule of the target's.
func policyAllows(objs []runtime.Object, from string, to labels.Set, port int) bool {
	source := labels.Set{"app": from, "app.kubernetes.io/part-of": "kub-demo"}
	allows := func(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peer labels.Set, targetPort bool) bool {
		portOK := len(ports) == 0
		for _, p := range ports {
			portOK = portOK || p.Port == nil || p.Port.IntValue() == port || (targetPort && p.Port.String() == "postgres")
		}
		for _, p := range peers {
			if sel, err := metav1.LabelSelectorAsSelector(p.PodSelector); err == nil && p.PodSelector != nil && sel.Matches(peer) && portOK {
				return true
			}
		}
		return false
	}
	var egress, ingress bool
	for _, o := range objs {
		np, ok := o.(*networkingv1.NetworkPolicy)
		if !ok {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			continue
		}
		if sel.Matches(source) {
			for _, r := range np.Spec.Egress {
				egress = egress || allows(r.To, r.Ports, to, false)
			}
		}
		if sel.Matches(to) {
			for _, r := range np.Spec.Ingress {
				ingress = ingress || allows(r.From, r.Ports, source, true)
			}
		}
	}
	return egress && ingress
}
