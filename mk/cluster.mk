# The end-to-end test on a real Kubernetes cluster. Included by the root Makefile.
#
#   make cluster-test KUBECONFIG=/tmp/k8s/kubeconfig IMAGE_LOAD=/tmp/k8s/import-images.sh
#   make cluster-test KUBECONFIG=$HOME/.kube/config IMAGE_LOAD="minikube image load"
#   make cluster-test KUBECONFIG=$HOME/.kube/config IMAGE_LOAD="kind load docker-image"
#
# It builds the images (make images), loads them with IMAGE_LOAD (which gets the image names
# as arguments), applies deploy/k8s (kubectl apply -f) and runs the course's flow and
# cmd/smoke through kubectl port-forward on 127.0.0.1, replaces the tasks pod, rolls auth under
# load, measures the users and tasks Recreate gap, runs each lesson of deploy/lessons (kubectl
# apply -k: kustomize overlays on deploy/k8s; frontend-nginx with an image made from this
# machine's nginx by scripts/nginx-image.sh), then the PostgreSQL overlay deploy/overlays/postgres
# (kubectl apply -k): the flow, and users and tasks rolled and a pod of each deleted under the
# load of a client pod, with 0 failed requests. It deletes what it applied (kubectl delete -f
# or -k). Without KUBECONFIG, IMAGE_LOAD or a cluster that answers it fails; it never skips.
# The test is built only with -tags cluster, so make test leaves it out (e2e/cluster).
#
# CLUSTER_POSTGRES_IMAGE is the overlay's database image: local/postgres:15 by default, built
# by make postgres-image from this machine's PostgreSQL (apt-get install postgresql) and
# loaded with IMAGE_LOAD; postgres:15, the overlay's own, on a cluster that can pull it (it is
# loaded too when the local Docker has it).

#
# make netpol-test (also run by make cluster-test, on deploy/k8s) tries every edge between
# the roles of deploy/k8s/network-policies.yaml from probe pods and prints the matrix and a
# verdict: enforced, or not enforced by this cluster. NETPOL_EXPECT=enforced fails the run
# when a denied edge connects. make cluster-test also shows the "not enforced" verdict when
# NETPOL_OFF and NETPOL_ON are commands that turn the cluster's enforcement off and on.

CLUSTER_TEST_TIMEOUT ?= 30m
CLUSTER_POSTGRES_IMAGE ?= local/postgres:15
NETPOL_EXPECT ?=
NETPOL_PROBE_IMAGE := kub-demo-netprobe:$(VERSION)

.PHONY: cluster-test netpol-image netpol-test

cluster-test: ## the end-to-end test on the cluster KUBECONFIG names; IMAGE_LOAD loads the images
	cd e2e && KUBECONFIG="$(KUBECONFIG)" IMAGE_LOAD="$(IMAGE_LOAD)" CLUSTER_POSTGRES_IMAGE="$(CLUSTER_POSTGRES_IMAGE)" \
		NETPOL_EXPECT="$(NETPOL_EXPECT)" NETPOL_OFF="$(NETPOL_OFF)" NETPOL_ON="$(NETPOL_ON)" \
		$(GO) test -tags cluster -count=1 -v -timeout $(CLUSTER_TEST_TIMEOUT) ./cluster/

netpol-image: ## the NetworkPolicy probe (e2e/netpol/probe) as an image FROM scratch
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		CGO_ENABLED=0 $(GO) build -C e2e -trimpath -ldflags="-s -w" -o "$$dir/probe" ./netpol/probe && \
		printf 'FROM scratch\nCOPY probe /probe\nUSER 65532:65532\nENTRYPOINT ["/probe"]\n' >"$$dir/Dockerfile" && \
		docker build -q -t $(NETPOL_PROBE_IMAGE) "$$dir" >/dev/null && echo "built $(NETPOL_PROBE_IMAGE)"

netpol-test: netpol-image ## which edges deploy/k8s's NetworkPolicies block, on the cluster KUBECONFIG names
	@test -n "$(KUBECONFIG)" -a -n "$(IMAGE_LOAD)" || { echo 'netpol-test: set KUBECONFIG and IMAGE_LOAD (as for make cluster-test), with deploy/k8s applied' >&2; exit 2; }
	$(IMAGE_LOAD) $(NETPOL_PROBE_IMAGE)
	cd e2e && KUBECONFIG="$(KUBECONFIG)" $(GO) run ./netpol/check -image $(NETPOL_PROBE_IMAGE) -expect "$(NETPOL_EXPECT)"
