//go:build cluster

package cluster

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"

	"github.com/kub-demo/kub-demo/e2e/cluster/loadreport"
)

const (
	overlayDir = "deploy/overlays/postgres"
	// The database image the overlay names; a cluster that can pull runs it as it is.
	overlayPostgresImage = "postgres:15"
	// What make postgres-image builds from this machine's PostgreSQL: nothing to pull.
	localPostgresImage = "local/postgres:15"
	// The StatefulSet's claim (volumeClaimTemplates "data", StatefulSet "postgres", pod 0):
	// deleting the StatefulSet keeps it, so the test deletes it itself.
	postgresClaim = "persistentvolumeclaim/data-postgres-0"
)

// postgresImage is the database image the test runs: CLUSTER_POSTGRES_IMAGE (make
// cluster-test sets it, local/postgres:15 by default), else local/postgres:15.
func postgresImage() string {
	if image := os.Getenv("CLUSTER_POSTGRES_IMAGE"); image != "" {
		return image
	}
	return localPostgresImage
}

// overlayKustomization writes, in a folder of the test's own, a kustomization whose only
// resource is deploy/overlays/postgres, with the database's image replaced by image when that is
// not the overlay's own (kustomize's images field, as "kustomize edit set image" writes it),
// and returns the folder, for kubectl -k. Kustomize takes a resource only by a relative path.
func overlayKustomization(t *testing.T, image string) string {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(repoRoot, overlayDir))
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + rel + "\n"
	if image != overlayPostgresImage {
		name, tag, _ := strings.Cut(image, ":")
		k += fmt.Sprintf("images:\n  - name: postgres\n    newName: %s\n    newTag: %q\n", name, tag)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// overlayObjects lists what the overlay and this test create: its objects, the database's
// claim and the load pod.
func overlayObjects(t *testing.T, kustomization string) []string {
	t.Helper()
	objects := strings.Fields(mustKubectl(t, 30*time.Second, "apply", "--dry-run=client", "-k", kustomization, "-o", "name"))
	return append(objects, postgresClaim, "pod/"+loadPod)
}

// buildOverlayImages makes the database image when it is local/postgres:15 (make
// postgres-image, from this machine's PostgreSQL) and the load client's, and loads both with
// IMAGE_LOAD. Another database image is loaded when the local Docker has it, and otherwise
// left for the cluster to pull.
func buildOverlayImages(t *testing.T, imageLoad []string, postgres string) {
	t.Helper()
	start := time.Now()
	if postgres == localPostgresImage {
		run(t, 10*time.Minute, "make", "postgres-image")
	}
	images := []string{buildLoadImage(t)}
	if err := exec.Command("docker", "image", "inspect", postgres).Run(); err == nil {
		images = append(images, postgres)
	} else {
		t.Logf("%s is not in the local Docker: the cluster must pull it", postgres)
	}
	t.Logf("images for the overlay built in %s", since(start))
	start = time.Now()
	out := run(t, 10*time.Minute, imageLoad[0], append(imageLoad[1:], images...)...)
	t.Logf("%s %s: %s\n%s", strings.Join(imageLoad, " "), strings.Join(images, " "), since(start), out)
}

// applyOverlay applies the overlay and waits until its Deployments are Available and the
// database's StatefulSet is rolled out; when the test ends it says what ran, if the test
// failed, and deletes the overlay's objects and the database's claim.
func applyOverlay(t *testing.T, kustomization string) {
	t.Helper()
	applyAndWait(t, "-k", kustomization, postgresClaim)
	if _, err := kubectl(availableTimeout, "rollout", "status", "statefulset/postgres", waitArg(availableTimeout)); err != nil {
		t.Fatalf("%s: the database's StatefulSet not ready: %v", overlayDir, err)
	}
}

// testOverlay is deploy/overlays/postgres on the cluster: applied, the course's flow at once, then
// users and tasks rolled and a pod of each deleted while clients inside the cluster log in,
// store tasks and list them. Not one request may fail, and every acknowledged task must be
// listed afterwards.
func testOverlay(t *testing.T, imageLoad []string, kustomization, smoke string, figure func(string, ...any)) {
	postgres := postgresImage()
	buildOverlayImages(t, imageLoad, postgres)

	start := time.Now()
	applyOverlay(t, kustomization)
	figure("%s (database image %s): applied, Deployments Available and the database ready in %s", overlayDir, postgres, since(start))
	users, tasks := portForward(t, "users-service", 8080), portForward(t, "tasks-service", 8000)
	// Right after the wait, with no retry, as for deploy/k8s.
	token, task := harness.Flow(t, users.URL, tasks.URL)
	runSmoke(t, smoke, users.URL, tasks.URL)

	load := startLoadPod(t)

	t.Run("trail-through-replicas", func(t *testing.T) {
		pods := trailThroughReplicas(t, load)
		figure("overlay: the trail of the load's answers named %s", pods)
	})

	t.Run("users-rollout", func(t *testing.T) {
		r, took := rollUnderInClusterLoad(t, load, "users-deployment", "app=users")
		figure("overlay: rollout restart of users-deployment (3 replicas) under load, %s: %s", took, r)
	})
	t.Run("tasks-rollout", func(t *testing.T) {
		r, took := rollUnderInClusterLoad(t, load, "tasks-deployment", "app=tasks")
		figure("overlay: rollout restart of tasks-deployment (3 replicas) under load, %s: %s", took, r)
	})
	t.Run("pods-deleted", func(t *testing.T) {
		load.start(t)
		start := time.Now()
		deletePods(t, "app=users", "app=tasks")
		took := since(start)
		load.waitIterations(t, 2)
		r := load.stop(t)
		figure("overlay: one users pod and one tasks pod deleted under load, gone and replaced in %s: %s", took, r)
		requireNoFailure(t, "deleting a users pod and a tasks pod", r)
	})

	// The course's task from before the rollouts, found again through new pods.
	restartForward(t, tasks)
	if !harness.HasTask(t, tasks.URL, token, task["title"]) {
		t.Errorf("after the rollouts GET /tasks does not list %q, stored before them", task["title"])
	}
}

// rollUnderInClusterLoad restarts a Deployment while the load pod's clients run, and keeps
// them going until every old pod is gone. It returns the load's report and how long the
// rollout took, from the restart to the last old pod gone.
func rollUnderInClusterLoad(t *testing.T, load *loadPodClient, deployment, selector string) (loadreport.Report, time.Duration) {
	t.Helper()
	old := podNames(t, selector)
	load.start(t)
	start := time.Now()
	mustKubectl(t, 30*time.Second, "rollout", "restart", "deployment/"+deployment)
	mustKubectl(t, 4*time.Minute, "rollout", "status", "deployment/"+deployment, waitArg(4*time.Minute))
	// Until the old pods have drained and exited, they can still drop a request.
	mustKubectl(t, 2*time.Minute, append([]string{"wait", "--for=delete", waitArg(2 * time.Minute)}, old...)...)
	took := since(start)
	load.waitIterations(t, 2) // and some after, for whatever outlived them
	r := load.stop(t)
	requireNoFailure(t, "the rollout of "+deployment, r)
	if fresh := podNames(t, selector); len(fresh) != 3 {
		t.Errorf("%s: %d pods after the rollout, want 3: %v", deployment, len(fresh), fresh)
	}
	return r, took
}

// deletePods deletes one pod of each selector at once, as kubectl delete pod does (a
// graceful stop), waits until they are gone, and for their replacements to be Ready.
func deletePods(t *testing.T, selectors ...string) {
	t.Helper()
	before := map[string][]string{}
	var victims []string
	for _, selector := range selectors {
		pods := podNames(t, selector)
		if len(pods) == 0 {
			t.Fatalf("no pod for %s", selector)
		}
		before[selector] = pods
		victims = append(victims, pods[0])
	}
	mustKubectl(t, 2*time.Minute, append([]string{"delete", "--wait", waitArg(2 * time.Minute)}, victims...)...)
	for _, selector := range selectors {
		waitReady(t, selector, before[selector])
	}
}

// requireNoFailure fails the test if any request of the load failed, if an acknowledged
// task is not listed, or if the load was too thin to say anything.
func requireNoFailure(t *testing.T, during string, r loadreport.Report) {
	t.Helper()
	if r.Failed() > 0 {
		t.Errorf("%s: %d failed (%s); the first:\n  %s", during, r.Failed(), r, strings.Join(append(r.Failures, r.CheckErrors...), "\n  "))
	}
	if r.MissingCount > 0 {
		t.Errorf("%s: %d of %d acknowledged tasks not listed afterwards, e.g. %q", during, r.MissingCount, r.Acknowledged, r.Missing)
	}
	if r.Acknowledged != r.Listed+r.MissingCount && len(r.CheckErrors) == 0 {
		t.Errorf("%s: %d tasks acknowledged, %d listed and %d missing", during, r.Acknowledged, r.Listed, r.MissingCount)
	}
	if r.Login.Sent < 20 || r.Create.Sent < 100 {
		t.Errorf("%s: only %d logins and %d POST /tasks: too little load to tell", during, r.Login.Sent, r.Create.Sent)
	}
}

// trailThroughReplicas runs the load pod's clients until the trail of their answers
// (X-Served-By, X-Auth-Verified-By) has named at least two pods of users, of tasks and of
// auth, and checks that each named pod is one of the Service's: the trail shows the
// spreading a learner cannot see otherwise. A Service spreads connections, not requests, and
// the clients keep theirs alive, so each round starts the clients again on new connections,
// up to a minute and a half. It returns the pods named.
func trailThroughReplicas(t *testing.T, load *loadPodClient) string {
	t.Helper()
	services := []string{"users", "tasks", "auth"}
	for _, svc := range services {
		mustKubectl(t, 2*time.Minute, "wait", "--for=condition=Ready", "pod", "-l", "app="+svc, waitArg(2*time.Minute))
	}
	seen := map[string]map[string]bool{}
	enough := func() bool {
		for _, svc := range services {
			if len(seen[svc]) < 2 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(90 * time.Second); !enough() && time.Now().Before(deadline); {
		load.start(t)     // new connections; waits for a few rounds of the clients
		r := load.stop(t) // a short run: requireNoFailure's minimum load does not apply
		if r.Failed() > 0 || r.MissingCount > 0 {
			t.Errorf("the trail through the replicas: %d failed, %d acknowledged tasks not listed (%s); the first:\n  %s",
				r.Failed(), r.MissingCount, r, strings.Join(append(r.Failures, r.CheckErrors...), "\n  "))
		}
		for _, svc := range services {
			if seen[svc] == nil {
				seen[svc] = map[string]bool{}
			}
			for _, p := range r.PodsOf(svc) {
				seen[svc][p] = true
			}
		}
	}
	var named []string
	for _, svc := range services {
		pods := slices.Sorted(maps.Keys(seen[svc]))
		if len(pods) < 2 {
			t.Errorf("%s: the trail named %q in a minute and a half of load, want at least two of its pods", svc, pods)
		}
		current := podNames(t, "app="+svc)
		for _, p := range pods {
			if !slices.Contains(current, "pod/"+p) {
				t.Errorf("%s: the trail named %q, not one of its pods %q", svc, p, current)
			}
		}
		named = append(named, fmt.Sprintf("%s %q", svc, pods))
	}
	return strings.Join(named, ", ")
}
