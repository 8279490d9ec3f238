//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

// repoRoot is the repository root: this package lives in e2e/cluster.
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

const (
	deployDir = "deploy/k8s"
	// How long a set of Deployments may take to become Available after kubectl apply.
	availableTimeout = 3 * time.Minute
	// kubectl delete waits for the pods to stop (SHUTDOWN_DELAY and the drain) and
	// the claims to be released.
	deleteTimeout = 3 * time.Minute
)

// The lessons, kustomize overlays on deploy/k8s, each applied on its own (kubectl apply -k),
// with how users and tasks must have found auth: the start of the "source" and the "url" of
// their "auth service found" log line. "{auth-service}" stands for the Service's ClusterIP.
var lessons = []struct {
	dir       string
	discovery map[string][2]string // deployment -> {source, url}
}{
	{"deploy/lessons/pod-internal", map[string][2]string{
		"users-deployment": {"AUTH_ADDRESS", "http://localhost:80"},
		"tasks-deployment": {"AUTH_ADDRESS", "http://localhost:80"},
	}},
	{"deploy/lessons/service-env", map[string][2]string{
		"users-deployment": {"AUTH_SERVICE_SERVICE_HOST", "http://{auth-service}:80"},
		"tasks-deployment": {"AUTH_SERVICE_SERVICE_HOST", "http://{auth-service}:80"},
	}},
	{"deploy/lessons/cluster-dns", map[string][2]string{
		"users-deployment": {"AUTH_ADDRESS", "http://auth-service.default:80"},
		"tasks-deployment": {"AUTH_ADDRESS", "http://auth-service.default.svc.cluster.local:80"},
	}},
}

// TestCluster is make cluster-test: the images built and loaded, deploy/k8s applied and
// run through the course's flow, its pods replaced and rolled, then each lesson.
func TestCluster(t *testing.T) {
	began := time.Now()
	imageLoad := requireCluster(t)
	var figures []string
	figure := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		figures = append(figures, line)
		t.Log(line)
	}
	t.Cleanup(func() {
		t.Logf("figures (make cluster-test, %s in all):\n  %s", since(began), strings.Join(figures, "\n  "))
	})

	sets := []manifests{{"-f", deployDir}}
	for _, l := range lessons {
		sets = append(sets, manifests{"-k", l.dir})
	}
	overlay := overlayKustomization(t, postgresImage())
	requireFreeNamespace(t, sets, overlayObjects(t, overlay))
	buildAndLoadImages(t, imageLoad, sets)
	smoke := buildSmoke(t)

	t.Run("deploy-k8s", func(t *testing.T) {
		start := time.Now()
		apply(t, manifests{"-f", deployDir})
		figure("deploy/k8s: applied and Available in %s", since(start))
		users, tasks := portForward(t, "users-service", 8080), portForward(t, "tasks-service", 8000)

		// The course's flow right after kubectl wait, with no retry: readiness must
		// mean that the services can serve it.
		token, task := harness.Flow(t, users.URL, tasks.URL)
		runSmoke(t, smoke, users.URL, tasks.URL)
		email, password := fmt.Sprintf("cluster-%d@example.com", time.Now().UnixNano()), "kubernetes-test"
		if a := harness.Call(t, "POST", users.URL+"/signup", "", map[string]string{"email": email, "password": password}); a.Status != http.StatusCreated {
			t.Fatalf("POST /signup: %d %s", a.Status, a.Raw)
		}

		t.Run("tasks-pod-replaced", func(t *testing.T) {
			old := podNames(t, "app=tasks")
			start := time.Now()
			mustKubectl(t, 2*time.Minute, append([]string{"delete", "--wait", waitArg(2 * time.Minute)}, old...)...)
			waitReady(t, "app=tasks", old)
			figure("tasks pod deleted and its replacement Ready in %s", since(start))
			restartForward(t, tasks)
			if !harness.HasTask(t, tasks.URL, token, task["title"]) {
				t.Errorf("GET /tasks from the new pod does not list %q, stored before the replacement", task["title"])
			}
		})

		t.Run("auth-rollout-under-load", func(t *testing.T) {
			restartForward(t, tasks)
			sent, failed, took := rollUnderLoad(t, users.URL, tasks.URL, token)
			figure("rollout restart of auth-deployment under load: %d requests (GET /tasks and POST /login), %d failed, %s", sent, failed, took)
		})

		t.Run("recreate-gap", func(t *testing.T) {
			gap := measureRecreateGap(t, "tasks-deployment", "tasks-service", tasks, func(url string) error { return getTasks(url, token) })
			figure("rollout restart of tasks-deployment (Recreate), GET /tasks in a loop: %s", gap)
			if !harness.HasTask(t, tasks.URL, token, task["title"]) {
				t.Errorf("after the rollout GET /tasks does not list %q", task["title"])
			}
			gap = measureRecreateGap(t, "users-deployment", "users-service", users, demoLogin)
			figure("rollout restart of users-deployment (Recreate), POST /login in a loop: %s", gap)
			harness.Login(t, users.URL, email, password) // the account outlived the pod
		})

		t.Run("network-policies", func(t *testing.T) {
			testNetworkPolicies(t, imageLoad, figure)
		})

		t.Run("browser", func(t *testing.T) {
			testBrowser(t, figure)
		})
	})

	for _, lesson := range lessons {
		t.Run(filepath.Base(lesson.dir), func(t *testing.T) {
			start := time.Now()
			apply(t, manifests{"-k", lesson.dir})
			figure("%s: applied and Available in %s", lesson.dir, since(start))
			users, tasks := portForward(t, "users-service", 8080), portForward(t, "tasks-service", 8000)
			harness.Flow(t, users.URL, tasks.URL) // right away, no retry
			checkDiscovery(t, lesson.discovery)
		})
	}

	t.Run("frontend-nginx", func(t *testing.T) {
		testNginxLesson(t, imageLoad, figure)
	})

	// Last, once deploy/k8s and the lessons are gone: the overlay keeps their objects'
	// names, and users and tasks find auth at auth-service.default, so it runs in
	// "default" too.
	t.Run("postgres-overlay", func(t *testing.T) {
		testOverlay(t, imageLoad, overlay, smoke, figure)
	})
}

// requireCluster fails, saying what to do, unless KUBECONFIG and IMAGE_LOAD are set and
// the cluster answers. It returns the image load command, split into words.
func requireCluster(t *testing.T) []string {
	t.Helper()
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Fatal("KUBECONFIG is not set. make cluster-test runs against the cluster KUBECONFIG names, and only then " +
			"(never a default context by accident): KUBECONFIG=/tmp/k8s/kubeconfig, or KUBECONFIG=$HOME/.kube/config for minikube or kind")
	}
	imageLoad := strings.Fields(os.Getenv("IMAGE_LOAD"))
	if len(imageLoad) == 0 {
		t.Fatal("IMAGE_LOAD is not set: the command that copies local Docker images into the cluster, given the image names " +
			`as arguments: IMAGE_LOAD=/tmp/k8s/import-images.sh, IMAGE_LOAD="minikube image load", IMAGE_LOAD="kind load docker-image"`)
	}
	for _, tool := range []string{"kubectl", "docker", "make", imageLoad[0]} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: %v", tool, err)
		}
	}
	if _, err := kubectl(20*time.Second, "get", "--raw", "/readyz"); err != nil {
		t.Fatalf("the cluster of KUBECONFIG=%s does not answer: %v", kubeconfig, err)
	}
	version, _ := kubectl(20*time.Second, "version")
	nodes, _ := kubectl(20*time.Second, "get", "nodes", "-o", "wide")
	t.Logf("cluster (KUBECONFIG=%s):\n%s%s", kubeconfig, version, nodes)
	return imageLoad
}

// manifests is what kubectl applies: a folder of manifests (how "-f", deploy/k8s as a
// learner applies it) or a kustomization (how "-k": a lesson or an overlay), relative to
// the repository root.
type manifests struct{ how, dir string }

func (m manifests) path() string { return filepath.Join(repoRoot, m.dir) }

// requireFreeNamespace fails if any object the manifests of sets, or the other objects
// named, create already exists: the test would change it and then delete it.
func requireFreeNamespace(t *testing.T, sets []manifests, others []string) {
	t.Helper()
	var all []string
	for _, m := range sets {
		others = append(others, names(t, m.how, m.path())...)
	}
	for _, o := range others {
		if !slices.Contains(all, o) {
			all = append(all, o)
		}
	}
	existing := strings.Fields(mustKubectl(t, 30*time.Second, append([]string{"get", "--ignore-not-found", "-o", "name"}, all...)...))
	if len(existing) > 0 {
		t.Fatalf("namespace default already holds %v: the test applies the manifests and deletes what it applied, "+
			"so it starts only when none of their objects exist. Remove them first, e.g. kubectl delete -f deploy/k8s, "+
			"or kubectl delete -k deploy/overlays/postgres and kubectl delete pvc data-postgres-0", existing)
	}
}

// buildAndLoadImages runs make images and the IMAGE_LOAD command with the images the
// manifests run.
func buildAndLoadImages(t *testing.T, imageLoad []string, sets []manifests) {
	t.Helper()
	var images []string
	for _, m := range sets {
		out := mustKubectl(t, 30*time.Second, "apply", "--dry-run=client", m.how, m.path(), "-o",
			`jsonpath={range .items[*]}{range .spec.template.spec.containers[*]}{.image}{"\n"}{end}{end}`)
		for _, image := range strings.Fields(out) {
			if !slices.Contains(images, image) {
				images = append(images, image)
			}
		}
	}
	slices.Sort(images)

	start := time.Now()
	run(t, 20*time.Minute, "make", "images")
	for _, image := range images {
		if _, err := exec.Command("docker", "image", "inspect", image).Output(); err != nil {
			t.Fatalf("make images did not build %s, which the manifests run: %v", image, err)
		}
	}
	t.Logf("make images: %s", since(start))
	start = time.Now()
	out := run(t, 10*time.Minute, imageLoad[0], append(imageLoad[1:], images...)...)
	t.Logf("%s %s: %s\n%s", strings.Join(imageLoad, " "), strings.Join(images, " "), since(start), out)
}

// buildSmoke builds cmd/smoke once.
func buildSmoke(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "smoke")
	run(t, 5*time.Minute, "go", "build", "-o", bin, "./cmd/smoke")
	return bin
}

// runSmoke runs the smoke command against the forwarded Services; it must pass.
func runSmoke(t *testing.T, bin, usersURL, tasksURL string) {
	t.Helper()
	out := run(t, time.Minute, bin, "--users", usersURL, "--tasks", tasksURL, "--request-id", "cluster-test")
	t.Logf("the smoke command:\n%s", out)
}

// run runs a command in the repository root and returns its output; it fails the test
// when the command fails or outlives timeout.
func run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	return runEnv(t, timeout, nil, name, args...)
}

// runEnv is run with env (NAME=value) added to the environment.
func runEnv(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// apply applies manifests and waits until their Deployments are Available; when the test
// ends it says what ran, if the test failed, and deletes their objects again.
func apply(t *testing.T, m manifests) {
	t.Helper()
	applyAndWait(t, m.how, m.path())
}

// applyAndWait applies path (how: -f for a folder, -k for a kustomization) and waits until
// its Deployments are Available; when the test ends it says what ran, if the test failed,
// and deletes what it applied, then the objects alsoDelete names (left by a delete of
// path, such as a StatefulSet's claim).
func applyAndWait(t *testing.T, how, path string, alsoDelete ...string) {
	t.Helper()
	objects := strings.Fields(mustKubectl(t, 30*time.Second, "apply", "--dry-run=client", how, path, "-o", "name"))
	t.Cleanup(func() {
		if t.Failed() {
			diagnose(t)
		}
		deletions := [][]string{{"delete", how, path, "--cascade=foreground"}}
		for _, o := range alsoDelete {
			deletions = append(deletions, []string{"delete", o})
		}
		for _, d := range deletions {
			if _, err := kubectl(deleteTimeout, append(d, "--ignore-not-found", "--wait", waitArg(deleteTimeout))...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	mustKubectl(t, time.Minute, "apply", how, path)
	args := append([]string{"wait", "--for=condition=Available", waitArg(availableTimeout)}, deployments(objects)...)
	if _, err := kubectl(availableTimeout, args...); err != nil {
		t.Fatalf("%s: Deployments not Available: %v", path, err)
	}
}

// waitReady waits until a pod with the selector, none of old, is Ready.
func waitReady(t *testing.T, selector string, old []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods := podNames(t, selector)
		var fresh []string
		for _, p := range pods {
			if !slices.Contains(old, p) {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) > 0 {
			mustKubectl(t, time.Until(deadline)+5*time.Second, append([]string{"wait", "--for=condition=Ready", "--timeout=" + time.Until(deadline).Round(time.Second).String()}, fresh...)...)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new pod for %s within 2m (old: %v, now: %v)", selector, old, pods)
		}
		time.Sleep(500 * time.Millisecond) // polling the API server for the pod to appear
	}
}

// restartForward points a port-forward at the Service's current pod.
func restartForward(t *testing.T, f *forward) {
	t.Helper()
	if err := f.start(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// rollUnderLoad restarts auth-deployment while clients send GET /tasks and POST /login
// (which call auth) without pause, and keeps them going until the old auth pods are gone.
// Not one request may fail.
func rollUnderLoad(t *testing.T, usersURL, tasksURL, token string) (sent, failed int, took time.Duration) {
	t.Helper()
	old := podNames(t, "app=auth")
	l := startLoad(4*time.Minute, 500_000, map[string]func() error{
		"GET /tasks #1": func() error { return getTasks(tasksURL, token) },
		"GET /tasks #2": func() error { return getTasks(tasksURL, token) },
		"POST /login":   func() error { return demoLogin(usersURL) },
	})
	defer l.stop()
	// Some load before the restart, so that users and tasks hold open connections to
	// the old auth pods when the rollout begins.
	if !l.waitSent(200, 30*time.Second) {
		t.Fatalf("the load did not get going: %d requests in 30s", l.sentNow())
	}
	start := time.Now()
	mustKubectl(t, 30*time.Second, "rollout", "restart", "deployment/auth-deployment")
	mustKubectl(t, 4*time.Minute, "rollout", "status", "deployment/auth-deployment", waitArg(4*time.Minute))
	// Until the old pods have drained and exited, they can still drop a request.
	mustKubectl(t, 2*time.Minute, append([]string{"wait", "--for=delete", waitArg(2 * time.Minute)}, old...)...)
	took = time.Since(start)
	// And some after, for whatever outlived them.
	l.waitSent(l.sentNow()+200, 30*time.Second)
	l.stop()
	sent, failed = l.counts()
	if l.exhausted {
		t.Errorf("the load ran out of its budget before the rollout ended: %d requests in %s", sent, since(l.began))
	}
	if sent < 100 {
		t.Errorf("only %d requests during the rollout", sent)
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the rollout of auth; the first:\n  %s", failed, sent, strings.Join(l.failures, "\n  "))
	}
	return sent, failed, took
}

// measureRecreateGap restarts a single-replica Recreate Deployment while a client sends
// do in a loop through its Service's port-forward, and returns the longest time without
// a successful answer: the gap that the strategy cannot avoid.
func measureRecreateGap(t *testing.T, deployment, service string, fwd *forward, do func(url string) error) recreateGap {
	t.Helper()
	restartForward(t, fwd)
	m := startGapMeter(fwd, 4*time.Minute, 200_000, do)
	if !m.waitFirstOK(10 * time.Second) {
		m.finish()
		t.Fatalf("%s: no answer before the rollout: %s", deployment, m.lastFailure)
	}
	endpoints := startEndpointGap(service, 4*time.Minute)
	mustKubectl(t, 30*time.Second, "rollout", "restart", "deployment/"+deployment)
	mustKubectl(t, 4*time.Minute, "rollout", "status", "deployment/"+deployment, waitArg(4*time.Minute))
	endpointGap, endpointsErr := endpoints.finish()
	if endpointsErr != nil {
		t.Errorf("%s: %v", deployment, endpointsErr)
	}
	if !m.finish() {
		t.Fatalf("%s: no answer after the rollout (%d sent, %d failed, port-forward started %d times): %s",
			deployment, m.sent, m.failed, m.restarts, m.lastFailure)
	}
	// With SHUTDOWN_DELAY 5s, a 10s drain at most and a pod start of a few seconds, a
	// gap near the grace period means something waits that should not.
	if m.gap > 30*time.Second || endpointGap > 30*time.Second {
		t.Errorf("%s: no answer for %s, no serving endpoint for %s, during a rollout restart", deployment, m.gap, endpointGap)
	}
	return recreateGap{client: m.gap, endpoints: endpointGap, sent: m.sent, failed: m.failed}
}

// recreateGap is what measureRecreateGap saw: the longest time without an answer through
// the port-forward (which goes to one pod, and serves through its SHUTDOWN_DELAY), the
// longest time the Service had no serving endpoint (what a client of the Service would
// see), and the requests sent and failed.
type recreateGap struct {
	client, endpoints time.Duration
	sent, failed      int
}

func (g recreateGap) String() string {
	return fmt.Sprintf("no answer through port-forward for %.1fs (%d sent, %d failed), no serving endpoint behind the Service for %.1fs",
		g.client.Seconds(), g.sent, g.failed, g.endpoints.Seconds())
}

// checkDiscovery reads the "auth service found" line each Deployment's service logged
// at start: the lesson must show the way of finding auth that it teaches.
func checkDiscovery(t *testing.T, want map[string][2]string) {
	t.Helper()
	clusterIP := ""
	if out, err := kubectl(30*time.Second, "get", "service", "auth-service", "-o", "jsonpath={.spec.clusterIP}"); err == nil {
		clusterIP = strings.TrimSpace(out)
	}
	for deployment, w := range want {
		container := strings.TrimSuffix(deployment, "-deployment")
		logs := mustKubectl(t, 30*time.Second, "logs", "deployment/"+deployment, "-c", container)
		var found struct{ Msg, URL, Source string }
		for _, line := range strings.Split(logs, "\n") {
			var entry struct{ Msg, URL, Source string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "auth service found" {
				found = entry
			}
		}
		wantURL := strings.ReplaceAll(w[1], "{auth-service}", clusterIP)
		if !strings.HasPrefix(found.Source, w[0]) || found.URL != wantURL {
			t.Errorf("%s: auth found through %s at %q, want %s at %q", deployment, found.Source, found.URL, w[0], wantURL)
		} else {
			t.Logf("%s: auth found through %s at %s", deployment, found.Source, found.URL)
		}
	}
}

// diagnose logs what the cluster shows of the test's objects: pods, events, logs.
func diagnose(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"get", "deployments,replicasets,statefulsets,pods,services,endpointslices,pvc", "-o", "wide"},
		{"get", "events", "--sort-by=.lastTimestamp"},
	} {
		out, err := kubectl(30*time.Second, args...)
		if err != nil {
			out = err.Error()
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	// Every warning and error the services logged, and the last lines of each.
	args := []string{"logs", "-l", "app in (auth,users,tasks)", "--all-containers", "--prefix", "--tail=-1", "--max-log-requests=20"}
	out, err := kubectl(30*time.Second, args...)
	if err != nil {
		t.Logf("kubectl %s: %v", strings.Join(args, " "), err)
		return
	}
	var warnings []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			warnings = append(warnings, line)
		}
	}
	t.Logf("warnings and errors in the services' logs (%d):\n%s", len(warnings), strings.Join(warnings[max(0, len(warnings)-60):], "\n"))
	tail, _ := kubectl(30*time.Second, "logs", "-l", "app in (auth,users,tasks,postgres)", "--all-containers", "--prefix", "--tail=10", "--max-log-requests=20")
	t.Logf("last lines of each:\n%s", tail)
}

func since(start time.Time) time.Duration { return time.Since(start).Round(100 * time.Millisecond) }

// The reverse-proxy lesson: nginx in the frontend's place, in an image made from this
// machine's nginx (scripts/nginx-image.sh, no registry) and the page (its Dockerfile).
const (
	nginxLesson      = "deploy/lessons/frontend-nginx"
	nginxLessonImage = "kub-demo-frontend-nginx:0.1.0" // as nginx-deployment.yaml names it
	nginxBaseImage   = "local/nginx:cluster-test"
)

// testNginxLesson builds and loads the lesson's image, applies the lesson, and runs the
// course's flow through nginx's /api/ on frontend-service, as the page does: nginx must
// find users and tasks by their names, and serve the page.
func testNginxLesson(t *testing.T, imageLoad []string, figure func(string, ...any)) {
	start := time.Now()
	runEnv(t, 5*time.Minute, []string{"NGINX_IMAGE=" + nginxBaseImage}, "scripts/nginx-image.sh")
	run(t, 5*time.Minute, "docker", "build", "-q", "-f", nginxLesson+"/Dockerfile",
		"--build-arg", "NGINX_IMAGE="+nginxBaseImage, "-t", nginxLessonImage, ".")
	run(t, 10*time.Minute, imageLoad[0], append(imageLoad[1:], nginxLessonImage)...)
	figure("%s: image made from this machine's nginx and loaded in %s", nginxLesson, since(start))

	start = time.Now()
	apply(t, manifests{"-k", nginxLesson})
	figure("%s: applied and Available in %s", nginxLesson, since(start))
	page := portForward(t, "frontend-service", 80)
	resp, err := http.Get(page.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "app.js") {
		t.Errorf("GET / through nginx: %d %.200s, want the page", resp.StatusCode, body)
	}
	harness.Flow(t, page.URL+"/api", page.URL+"/api") // right away, no retry
}
