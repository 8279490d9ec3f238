# Kubernetes checks. Included by the root Makefile (include mk/*.mk).
#
# kube-score is installed with "go install" at a pinned version into bin/tools, so
# CI needs only the Go module proxy. The Go tests in e2e/kubernetes find it through
# KUBE_SCORE (exported below) and fail on any CRITICAL or WARNING it reports.

KUBE_SCORE_VERSION ?= v1.20.0
KUBE_SCORE_DIR     := $(CURDIR)/bin/tools/kube-score-$(KUBE_SCORE_VERSION)
export KUBE_SCORE  := $(KUBE_SCORE_DIR)/kube-score

$(KUBE_SCORE):
	GOBIN=$(KUBE_SCORE_DIR) go install github.com/zegl/kube-score/cmd/kube-score@$(KUBE_SCORE_VERSION)

.PHONY: k8s-tools k8s-lint k8s-test

k8s-tools: $(KUBE_SCORE) ## install kube-score (pinned) into bin/tools

# kube-score reads what kustomize renders (krusty, in the test): deploy/k8s, every lesson of
# deploy/lessons and every overlay of deploy/overlays, as kubectl apply -k would create them.
k8s-lint: $(KUBE_SCORE) ## kube-score on deploy/k8s, each lesson and each overlay; fails on any CRITICAL or WARNING
	cd e2e && go test -count=1 -v -run 'TestKubeScore' ./kubernetes/

k8s-test: $(KUBE_SCORE) ## only the Kubernetes checks (manifests, kube-score, flows on loopback)
	cd e2e && go test -count=1 ./kubernetes/...
