//go:build cluster

package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/e2e/cluster/loadreport"
)

const (
	// The load client (./loadclient) as an image FROM scratch, and its pod.
	loadImage = "kub-demo-cluster-load:test"
	loadPod   = "kub-demo-cluster-load"
	// Its clients: each, once a second, logs in, then stores a task and lists the tasks
	// loadRounds times with its token (about 6 logins, 60 POST /tasks and 60 GET /tasks a
	// second in all): a steady load, well within what auth's bcrypt and the signup limit
	// of one address take, so that any failure is the disruption's.
	loadClients = 6
	loadRounds  = 10
)

// buildLoadImage builds ./loadclient into an image FROM scratch (nothing to pull) and
// returns its name.
func buildLoadImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	runEnv(t, 5*time.Minute, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(dir, "loadclient"), "./e2e/cluster/loadclient")
	dockerfile := "FROM scratch\nCOPY loadclient /loadclient\nUSER 65532:65532\nENTRYPOINT [\"/loadclient\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, 5*time.Minute, "docker", "build", "--force-rm", "-q", "-t", loadImage, dir)
	return loadImage
}

// The load pod: non-root, read-only, no capability, as the services' pods; not part of
// kub-demo (its NetworkPolicies leave it alone, and public-ingress lets it in). It reaches
// users and tasks by their Services' names in its own namespace, and ends by itself within
// activeDeadlineSeconds if the test that made it is gone.
const loadPodManifest = `apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 1800
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 10
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: load
      image: %[2]s
      imagePullPolicy: IfNotPresent
      args: ["-listen", ":8080", "-users", "http://users-service:8080", "-tasks", "http://tasks-service:8000", "-clients", "%[3]d", "-period", "1s", "-rounds", "%[4]d"]
      ports:
        - name: control
          containerPort: 8080
      readinessProbe:
        httpGet:
          path: /healthz
          port: control
        periodSeconds: 1
      resources:
        requests:
          cpu: 50m
          memory: 32Mi
        limits:
          cpu: 500m
          memory: 64Mi
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
`

// loadPodClient drives the load pod through a port-forward to it (the pod stays: a
// port-forward to it is not pinned to anything that goes away).
type loadPodClient struct {
	fwd     *forward
	running bool // started and not yet stopped
}

// startLoadPod creates the load pod, waits for it to be Ready, and forwards a port to it; the
// pod is deleted when the test ends.
func startLoadPod(t *testing.T) *loadPodClient {
	t.Helper()
	manifest := filepath.Join(t.TempDir(), "load-pod.yaml")
	if err := os.WriteFile(manifest, fmt.Appendf(nil, loadPodManifest, loadPod, loadImage, loadClients, loadRounds), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := kubectl(30*time.Second, "logs", "pod/"+loadPod, "--tail=40"); err == nil {
				t.Logf("the load pod's last lines:\n%s", out)
			}
		}
		if _, err := kubectl(time.Minute, "delete", "-f", manifest, "--ignore-not-found", "--wait", waitArg(time.Minute)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	mustKubectl(t, 30*time.Second, "apply", "-f", manifest)
	mustKubectl(t, 2*time.Minute, "wait", "--for=condition=Ready", "pod/"+loadPod, waitArg(2*time.Minute))
	l := &loadPodClient{fwd: &forward{target: "pod/" + loadPod, port: 8080}}
	t.Cleanup(l.fwd.stop)
	if err := l.fwd.start(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return l
}

var controlClient = &http.Client{Timeout: time.Minute} // /stop checks every task first

// call sends one request to the load pod's control API and decodes its report.
func (l *loadPodClient) call(t *testing.T, method, path string) loadreport.Report {
	t.Helper()
	r, err := l.send(method, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (l *loadPodClient) send(method, path string) (loadreport.Report, error) {
	var r loadreport.Report
	if !l.fwd.alive() {
		if err := l.fwd.start(30 * time.Second); err != nil {
			return r, err
		}
	}
	req, err := http.NewRequest(method, l.fwd.URL+path, nil)
	if err != nil {
		return r, err
	}
	resp, err := controlClient.Do(req)
	if err != nil {
		return r, fmt.Errorf("the load pod's %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &r) != nil {
		return r, fmt.Errorf("the load pod's %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return r, nil
}

// start starts the clients and waits until each has gone round a few times, so that they
// hold connections to the Services' pods when the test disrupts them. It stops them again
// when the test ends before stop.
func (l *loadPodClient) start(t *testing.T) {
	t.Helper()
	l.call(t, http.MethodPost, "/start")
	l.running = true
	t.Cleanup(func() {
		if l.running {
			l.running = false
			if _, err := l.send(http.MethodPost, "/stop"); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	l.waitIterations(t, 3)
}

// waitIterations waits until the clients have gone round n more times each (n × clients
// more logins), a minute at most.
func (l *loadPodClient) waitIterations(t *testing.T, n int) {
	t.Helper()
	want := l.call(t, http.MethodGet, "/status").Login.Sent + n*loadClients
	deadline := time.Now().Add(time.Minute)
	for {
		r := l.call(t, http.MethodGet, "/status")
		if r.Login.Sent >= want {
			return
		}
		if !r.Running || time.Now().After(deadline) {
			t.Fatalf("the load did not go on: %d logins of %d awaited (running: %t; %s); the first failures:\n  %v",
				r.Login.Sent, want, r.Running, r, r.Failures)
		}
		time.Sleep(200 * time.Millisecond) // polling the load's counts
	}
}

// stop stops the clients and returns their report, with the check of every acknowledged task.
func (l *loadPodClient) stop(t *testing.T) loadreport.Report {
	t.Helper()
	l.running = false
	return l.call(t, http.MethodPost, "/stop")
}
