// Package cluster runs deploy/k8s (kubectl apply -f), each lesson of deploy/lessons and the
// PostgreSQL overlay deploy/overlays/postgres (kustomize overlays on deploy/k8s, kubectl
// apply -k) on a real Kubernetes cluster, as a learner would, and checks what only a cluster
// can show: discovery, DNS, kube-proxy, probes, volumes, rollouts and pod replacement. Under the overlay's rollouts and pod deletions the load comes from a pod,
// ./loadclient, which reaches users and tasks through their Services as any client inside
// the cluster would; the test drives it through a port-forward to that pod.
//
// Its test is built only with -tags cluster, so "go test work" (make test) leaves it
// out; make cluster-test runs it against the cluster that KUBECONFIG names, loading the
// images with the command in IMAGE_LOAD:
//
//	make cluster-test KUBECONFIG=/tmp/k8s/kubeconfig IMAGE_LOAD=/tmp/k8s/import-images.sh
//	make cluster-test KUBECONFIG=$HOME/.kube/config IMAGE_LOAD="minikube image load"
//	make cluster-test KUBECONFIG=$HOME/.kube/config IMAGE_LOAD="kind load docker-image"
//
// Without either, or with a cluster that does not answer, it fails and says why; it
// never skips. It uses the namespace "default" (the manifests' AUTH_ADDRESS names it),
// refuses to start when objects of the manifests already exist there, and deletes what
// it applied, even when it fails. Services are reached through kubectl port-forward on
// 127.0.0.1 only. CLUSTER_POSTGRES_IMAGE is the overlay's database image: local/postgres:15
// when unset, made by make postgres-image; postgres:15 (the overlay's own) on a cluster that
// can pull it.
package cluster
