# kub-demo: the course's three services in Go. `make help` lists the targets.
SHELL := /bin/bash
SERVICES := auth users tasks frontend
VERSION ?= 0.1.0
GO ?= go

TOOLS := $(CURDIR)/bin/tools
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
# A count of inputs, not a duration: with a duration, Go 1.26's fuzzing coordinator can
# fail a target with a bare "context deadline exceeded" as the time runs out, and no
# failing input (golang/go#75804, fixed in Go 1.27; CI saw it). 10000 inputs take 1-10 s
# a target here. FUZZTIME=5m (or 1000000x) fuzzes longer.
FUZZTIME ?= 10000x
# package:target for every fuzz target; make fuzz runs each for FUZZTIME.
FUZZ_TARGETS := \
	platform/web:FuzzDecode \
	services/auth/internal/server:FuzzAuthRequests \
	services/users/internal/server:FuzzCredentials \
	services/tasks/internal/server:FuzzTaskCreate \
	services/tasks/internal/tasks:FuzzRecordRoundTrip \
	services/tasks/internal/filestore:FuzzOpenAnyFile

.PHONY: help build run check test vet lint fuzz clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Where make build puts the binaries; BUILDFLAGS=-v names each package as it is compiled.
BIN ?= bin
BUILDFLAGS ?=

build: ## static binaries in bin/: bin/auth, bin/users, bin/tasks, bin/frontend
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -trimpath -ldflags="-s -w" -o $(BIN)/ $(foreach svc,$(SERVICES),./services/$(svc)/cmd/$(svc))

# Not "run: build": run-local.sh checks its ports before a first build that takes minutes.
run: ## build, then run all four locally without Docker, the web UI on :3000 (Ctrl-C stops them)
	@scripts/run-local.sh

# The three loops, each whole here; the targets they call are in mk/*.mk.
#   lint   go vet and staticcheck on both modules, the cluster test's build tag included
#   check  lint, then the product's tests in -short mode (no images, binaries or browsers)
#   test   lint, kube-score and newman installed, the Postman collection, every test of
#          both modules with the race detector, then each fuzz target briefly
vet: ## go vet both modules
	$(GO) vet work
	$(GO) vet -tags cluster ./e2e/cluster/

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: vet $(STATICCHECK) ## go vet and staticcheck on both modules
	$(STATICCHECK) ./...
	cd e2e && $(STATICCHECK) ./... && $(STATICCHECK) -tags cluster ./cluster/

check: lint ## the fast loop: lint and the product's tests in -short mode, under a minute warm
	$(GO) test -short -count=1 ./...

test: lint k8s-tools postman-test ## every test of both modules, then each fuzz target briefly
	$(GO) test -race -count=1 -timeout 30m work
	@$(MAKE) --no-print-directory fuzz

fuzz: ## run each fuzz target for FUZZTIME (10000 inputs); seed corpora are in testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}\$$" -fuzztime=$(FUZZTIME) ./$${t%%:*} || exit 1; \
	done

clean: ## remove binaries and local data
	rm -rf bin .data

include mk/*.mk
