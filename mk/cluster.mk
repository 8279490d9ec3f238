# The end-to-end test on a real Kubernetes cluster (issue 12). Included by the root Makefile.
#
#   make cluster-test KUBECONFIG=/tmp/k8s/kubeconfig IMAGE_LOAD=/tmp/k8s/import-images.sh
#   make cluster-test KUBECONFIG=$HOME/.kube/config IMAGE_LOAD="minikube image load"
#   make cluster-test KUBECONFIG=$HOME/.kube/config IMAGE_LOAD="kind load docker-image"
#
# It builds the images (make images), loads them with IMAGE_LOAD (which gets the image names
# as arguments), applies deploy/k8s and runs the course's flow and cmd/smoke through kubectl
# port-forward on 127.0.0.1, replaces the tasks pod, rolls auth under load, measures the
# users and tasks Recreate gap, runs each lesson of deploy/k8s/examples, and deletes what
# it applied. Without KUBECONFIG, IMAGE_LOAD or a cluster that answers it fails; it never
# skips. The test is built only with -tags cluster, so make test leaves it out (e2e/cluster).

CLUSTER_TEST_TIMEOUT ?= 30m

.PHONY: cluster-test cluster-lint

cluster-test: ## the end-to-end test on the cluster KUBECONFIG names; IMAGE_LOAD loads the images
	cd e2e && KUBECONFIG="$(KUBECONFIG)" IMAGE_LOAD="$(IMAGE_LOAD)" \
		$(GO) test -tags cluster -count=1 -v -timeout $(CLUSTER_TEST_TIMEOUT) ./cluster/

# make lint (and so make test) vets the cluster test too, though it does not run it.
cluster-lint: $(STATICCHECK)
	cd e2e && $(GO) vet -tags cluster ./cluster/ && $(STATICCHECK) -tags cluster ./cluster/

lint: cluster-lint
