package kubernetes

import (
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestLessons checks, without a cluster, that each lesson renders what it teaches: how
// users and tasks find auth (AUTH_ADDRESS, or none and the kubelet's AUTH_SERVICE_SERVICE_*
// variables), whether auth runs in pods of its own behind auth-service or in theirs,
// enableServiceLinks, and LAB_CONTROLS on every service container of a lesson (never in
// deploy/k8s). make cluster-test shows on a cluster how the services found auth.
func TestLessons(t *testing.T) {
	lessons := []struct {
		dir          string
		authAddress  map[string]string // users/tasks deployment -> AUTH_ADDRESS, "" when unset
		authSidecar  bool              // auth is a container of the users and tasks pods, with no pods of its own
		serviceLinks bool              // enableServiceLinks of users and tasks
		labControls  bool
	}{
		{"deploy/k8s", map[string]string{"users": "auth-service.default", "tasks": "auth-service.default"}, false, true, false},
		{"deploy/lessons/pod-internal", map[string]string{"users": "localhost", "tasks": "localhost"}, true, true, true},
		{"deploy/lessons/service-env", map[string]string{"users": "", "tasks": ""}, false, true, true},
		{"deploy/lessons/cluster-dns", map[string]string{"users": "auth-service.default", "tasks": "auth-service.default.svc.cluster.local"}, false, false, true},
	}
	for _, l := range lessons {
		t.Run(filepath.Base(l.dir), func(t *testing.T) {
			set := loadSet(t, l.dir)
			var order []string
			for _, o := range set.Objects {
				order = append(order, objectKey(o.Obj))
			}
			authService := slices.Index(order, "Service/auth-service")
			if hasAuth := slices.Contains(order, "Deployment/auth-deployment"); hasAuth == l.authSidecar || (authService >= 0) == l.authSidecar {
				t.Errorf("auth-deployment and auth-service exist: %v, %v; want %v", hasAuth, authService >= 0, !l.authSidecar)
			}
			for _, p := range set.pods() {
				svc := imageService(t, p.Spec.Containers[0].Image)
				want, isClient := l.authAddress[svc]
				for _, c := range p.Spec.Containers {
					if lab, _ := literalEnv(&c, "LAB_CONTROLS"); (lab == "true") != l.labControls {
						t.Errorf("%s/%s: LAB_CONTROLS=%q, want it on: %v", p.Deployment.Name, c.Name, lab, l.labControls)
					}
				}
				if !isClient {
					continue
				}
				if got, _ := literalEnv(&p.Spec.Containers[0], "AUTH_ADDRESS"); got != want {
					t.Errorf("%s: AUTH_ADDRESS=%q, want %q", p.Deployment.Name, got, want)
				}
				if links := p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks; links != l.serviceLinks {
					t.Errorf("%s: enableServiceLinks %v, want %v", p.Deployment.Name, links, l.serviceLinks)
				}
				var sidecar *corev1.Container
				for i, c := range p.Spec.Containers {
					if imageService(t, c.Image) == "auth" {
						sidecar = &p.Spec.Containers[i]
					}
				}
				if (sidecar != nil) != l.authSidecar {
					t.Errorf("%s: an auth container in the pod: %v, want %v", p.Deployment.Name, sidecar != nil, l.authSidecar)
				}
				// The kubelet injects AUTH_SERVICE_SERVICE_HOST only into pods started after
				// the Service exists: kubectl applies in the rendered order.
				if want == "" && (authService < 0 || authService > slices.Index(order, "Deployment/"+p.Deployment.Name)) {
					t.Errorf("%s finds auth by AUTH_SERVICE_SERVICE_HOST, but auth-service is not created before it: %v", p.Deployment.Name, order)
				}
			}
		})
	}
}
