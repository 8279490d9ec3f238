package kubernetes

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Every container of every set runs as its real binary with the environment its
// manifest gives it (literal values, Secret keys, the memory limit for GOMEMLIMIT), with
// three changes a loopback run needs: free ports for PORT and METRICS_PORT, data folders
// in temporary directories, and users and tasks pointed at an auth started the same way.
// What the manifests promise must then hold against the process itself:
//   - the readiness and liveness paths answer 200 on the port the probes name;
//   - /metrics answers in the Prometheus text format on the metrics port the pod's
//     prometheus.io annotations and the NetworkPolicies name;
//   - /metrics on the public port answers 404, so the Services do not publish it.
//
// How pods find each other is not modelled here: make cluster-test runs every set on a
// real cluster.
func TestServedPaths(t *testing.T) {
	for _, dir := range manifestSets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			set := loadSet(t, dir)
			var authAddr string
			// auth first: users and tasks are ready only once auth has answered them.
			for _, wantAuth := range []bool{true, false} {
				for _, p := range set.pods() {
					for i := range p.Spec.Containers {
						c := &p.Spec.Containers[i]
						svc := imageService(t, c.Image)
						if svc == "" || (svc == "auth") != wantAuth {
							continue
						}
						where := p.Deployment.Name + "/" + c.Name
						listen, metrics := serve(t, set, c, svc, where, authAddr)
						if svc == "auth" && authAddr == "" {
							authAddr = "127.0.0.1:" + strconv.Itoa(listen[0])
						}
						checkServed(t, c, where, listen, metrics)
					}
				}
			}
		})
	}
}

// serve starts a container's binary and returns its loopback ports: listen maps the
// container's PORT, metrics its METRICS_PORT, each as [loopback, containerPort].
func serve(t *testing.T, set *manifestSet, c *corev1.Container, svc, where, authAddr string) (listen, metrics [2]int) {
	t.Helper()
	port, metricsPort, err := listenPorts(t, c, svc)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	env := containerEnv(t, set, c, where)
	// Any free loopback ports in place of the container's: the binary says which it bound.
	env = append(env, "PORT=0", "METRICS_PORT=0")
	for name := range envOf(t, svc) {
		if strings.HasSuffix(name, "_FOLDER") {
			env = append(env, name+"="+t.TempDir())
		}
	}
	if svc != "auth" {
		env = append(env, "AUTH_ADDRESS="+authAddr)
	}
	p := start(t, where, binary(t, svc), env)
	loopbackMetrics, _ := strconv.Atoi(p.MetricsURL[strings.LastIndex(p.MetricsURL, ":")+1:])
	return [2]int{p.Port, int(port)}, [2]int{loopbackMetrics, int(metricsPort)}
}

// containerEnv is what the kubelet puts in the container's environment from its env
// list. A later entry wins over an earlier one, as in the kubelet.
func containerEnv(t *testing.T, set *manifestSet, c *corev1.Container, where string) []string {
	t.Helper()
	var env []string
	for _, e := range c.Env {
		val := e.Value
		switch vf := e.ValueFrom; {
		case vf == nil:
		case vf.SecretKeyRef != nil:
			sec := set.secret(vf.SecretKeyRef.Name)
			v, ok := "", false
			if sec != nil {
				v, ok = sec.StringData[vf.SecretKeyRef.Key]
				if b, inData := sec.Data[vf.SecretKeyRef.Key]; !ok && inData {
					v, ok = string(b), true
				}
			}
			if !ok {
				if vf.SecretKeyRef.Optional != nil && *vf.SecretKeyRef.Optional {
					continue // an optional key that is absent sets nothing
				}
				t.Fatalf("%s: %s: no key %s in Secret %s", where, e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name)
			}
			val = v
		case vf.FieldRef != nil && vf.FieldRef.FieldPath == "spec.nodeName":
			val = "test-node"
		default:
			t.Fatalf("%s: %s: valueFrom not modelled", where, e.Name)
		}
		env = append(env, e.Name+"="+val)
	}
	return env
}

func checkServed(t *testing.T, c *corev1.Container, where string, listen, metrics [2]int) {
	t.Helper()
	loopback := func(ref corev1.Probe) int {
		_, cp := findPort(&corev1.PodSpec{Containers: []corev1.Container{*c}}, ref.HTTPGet.Port)
		switch {
		case cp == nil:
			return 0
		case int(cp.ContainerPort) == listen[1]:
			return listen[0]
		case int(cp.ContainerPort) == metrics[1]:
			return metrics[0]
		}
		return 0
	}
	for kind, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil {
			t.Errorf("%s: no httpGet %s probe", where, kind)
			continue
		}
		port := loopback(*pr)
		if port == 0 {
			t.Errorf("%s: %s probe port %s is neither PORT nor METRICS_PORT", where, kind, pr.HTTPGet.Port.String())
			continue
		}
		// users and tasks turn ready once auth has answered: poll, with a deadline.
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, pr.HTTPGet.Path)
		if status, body := pollStatus(url, http.StatusOK, 10*time.Second); status != http.StatusOK {
			t.Errorf("%s: %s probe GET %s (port %s) = %d %s; the kubelet would count a failure",
				where, kind, pr.HTTPGet.Path, pr.HTTPGet.Port.String(), status, body)
		}
	}
	status, body := pollStatus(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics[0]), http.StatusOK, 5*time.Second)
	if status != http.StatusOK || !strings.Contains(body, "# TYPE ") {
		t.Errorf("%s: GET /metrics on METRICS_PORT (%d) = %d %.200s; want the Prometheus text format", where, metrics[1], status, body)
	}
	if status, body := pollStatus(fmt.Sprintf("http://127.0.0.1:%d/metrics", listen[0]), http.StatusNotFound, 5*time.Second); status != http.StatusNotFound {
		t.Errorf("%s: GET /metrics on the public PORT (%d) = %d %.200s; want 404", where, listen[1], status, body)
	}
}

// pollStatus GETs url until it answers want or timeout passes, and returns the last answer.
func pollStatus(url string, want int, timeout time.Duration) (int, string) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		status, body := 0, ""
		resp, err := client.Get(url)
		if err != nil {
			body = err.Error()
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			status, body = resp.StatusCode, string(b)
		}
		if status == want || time.Now().After(deadline) {
			return status, body
		}
		time.Sleep(50 * time.Millisecond)
	}
}
